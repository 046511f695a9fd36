"""What makes a task *the* benchmark task, beyond its wording: its scenario id, its gold answer,
its MiniWoB task and seed. Synthesized data must carry none of it, and the contamination check
compares it (on tau2 every benchmark task has the same instruction sentence, so comparing
instructions alone sees nothing there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from lbi.types import Example, Task

# Setup keys that name one benchmark item (not a shared resource like a database name).
IDENTITY_KEYS = ("tau2_task_id", "scenario_id", "benchmark_id")
_MIN_GOLD_CHARS = 12  # shorter gold values ("1", "yes") would match by chance
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.strip().rstrip(";").casefold())


def training_setup(setup: dict[str, Any]) -> dict[str, Any]:
    """A setup with the benchmark-identifying keys removed: what a synthesized task may keep
    from a benchmark task it started from (e.g. the database, not the scenario)."""
    return {k: v for k, v in setup.items() if k not in IDENTITY_KEYS}


def _gold_strings(gold: dict[str, Any]) -> Iterable[str]:
    for key, value in gold.items():
        if key in IDENTITY_KEYS:
            continue
        if isinstance(value, str) and len(value.strip()) >= _MIN_GOLD_CHARS:
            yield _norm(value)


def benchmark_marks(task: Task, seeds: Iterable[int] = (0,)) -> set[tuple[str, str]]:
    """The identity of a benchmark task: scenario ids, gold answers, (MiniWoB) task + seed."""
    marks: set[tuple[str, str]] = set()
    for source in (task.setup, task.gold):
        for key in IDENTITY_KEYS:
            if source.get(key) is not None:
                marks.add(("scenario", f"{key}={source[key]}"))
    marks.update(("gold", g) for g in _gold_strings(task.gold))
    if "task" in task.setup:
        own = task.setup.get("seed")
        for seed in [own] if own is not None else seeds:
            marks.add(("task+seed", json.dumps([task.setup["task"], seed])))
    return marks


def data_marks(item: Task | Example) -> set[tuple[str, str]]:
    """What a synthesized task or example carries that could be a benchmark's identity."""
    marks: set[tuple[str, str]] = set()
    for key in IDENTITY_KEYS:
        if item.setup.get(key) is not None:
            marks.add(("scenario", f"{key}={item.setup[key]}"))
    if "task" in item.setup and item.setup.get("seed") is not None:
        marks.add(("task+seed", json.dumps([item.setup["task"], item.setup["seed"]])))
    if isinstance(item, Task):
        for key in IDENTITY_KEYS:
            if item.gold.get(key) is not None:
                marks.add(("scenario", f"{key}={item.gold[key]}"))
        marks.update(("gold", g) for g in _gold_strings(item.gold))
        # A reference solution is what a task carries as its answer. Example actions are not
        # compared: an agent that writes `SELECT count(*) FROM dogs` by itself learnt it.
        marks.update(
            ("gold", _norm(a)) for a in item.reference if len(a.strip()) >= _MIN_GOLD_CHARS
        )
    return marks


def identity_matches(
    benchmark: Iterable[Task], data: Iterable[Task | Example], seeds: Iterable[int] = (0,)
) -> dict[str, tuple[str, str, str]]:
    """benchmark task id -> (data id, data kind, what matched) for each task whose identity
    (scenario id, gold answer, task + seed) appears in the data."""
    index: dict[tuple[str, str], tuple[str, str]] = {}
    for item in data:
        if isinstance(item, Task) and item.origin == "benchmark":
            continue
        kind = "example" if isinstance(item, Example) else "task"
        for mark in data_marks(item):
            index.setdefault(mark, (item.id, kind))
    seeds = list(seeds)
    out: dict[str, tuple[str, str, str]] = {}
    for task in benchmark:
        for mark in sorted(benchmark_marks(task, seeds)):
            hit = index.get(mark)
            if hit is not None:
                what = "gold answer" if mark[0] == "gold" else f"{mark[0]} {mark[1]}"
                out[task.id] = (hit[0], hit[1], what)
                break
    return out
