"""Task deduplication: the blocked similarity pass keeps exactly the tasks the definition keeps
(each task, in sorted order, unless a kept earlier one is at least `threshold` similar)."""

from __future__ import annotations

import random

import pytest

from lbi.embed.hashing import HashingEmbedder
from lbi.pipeline import tasks as task_stage
from lbi.types import Task

TEMPLATES = [
    "set the key of the first area to the value shown on the list page",
    "read the stored value of the key named in the second section",
    "delete every key of the area then list what is left",
]
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "omega",
    "sigma",
    "kappa",
    "theta",
    "lambda",
    "zeta",
    "eta",
    "iota",
]


def _reference(tasks: list[Task], embed, threshold: float) -> list[str]:  # type: ignore[no-untyped-def]
    ordered = sorted(tasks, key=lambda t: (t.origin, t.doc_id or "", t.instruction))
    seen: set[str] = set()
    kept = []
    for t in ordered:
        key = task_stage._norm(t.instruction) + repr(sorted(t.setup.items()))
        if key not in seen:
            seen.add(key)
            kept.append(t)
    vecs = embed([t.instruction for t in kept])
    out: list[Task] = []
    for n, t in enumerate(kept):
        if not any(float(vecs[n] @ vecs[kept.index(o)]) >= threshold for o in out):
            out.append(t)
    return [t.id for t in out]


@pytest.mark.parametrize("threshold", [0.95, 0.8, 0.6])
def test_blocked_dedup_keeps_what_the_definition_keeps(
    monkeypatch: pytest.MonkeyPatch, threshold: float
) -> None:
    monkeypatch.setattr(task_stage, "DEDUP_BLOCK", 7)  # many blocks, ties across their edges
    rng = random.Random(4)
    tasks = [
        Task(
            env="toy",
            instruction=rng.choice(TEMPLATES) + " " + " ".join(rng.choices(WORDS, k=2)),
            origin=rng.choice(["docs", "explore"]),
            doc_id=f"d{n % 3}",
        )
        for n in range(120)
    ]
    five = tasks[5]
    tasks.append(
        Task(
            env="toy",
            instruction=five.instruction.upper() + "!",
            origin=five.origin,
            doc_id=five.doc_id,
        )
    )
    assert tasks[-1].id != five.id
    embed = HashingEmbedder().embed
    got = [t.id for t in task_stage.select_tasks(tasks, embed, threshold)]
    assert got == _reference(tasks, embed, threshold)
    assert (five.id in got) + (tasks[-1].id in got) <= 1  # the same text once normalised
    assert len(got) < len(tasks) - 1
