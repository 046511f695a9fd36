"""The agent's limits measured with a model that can act (issue 26, item 2).

The act step's limits were sized for SmolLM2-135M. This reads the agent steps of runs made with a
`local:` catalogue model (synthesis rollouts and evaluation episodes, every variant) and counts
them with that model's own tokenizer (its GGUF's vocabulary), against each limit:

- the answer (REASON and ACTION) against `EpisodeSettings.max_tokens`: answers that reach it
  were cut;
- REASON against the answer grammar's 600-character cap (`agents/parse.py`);
- the prompt sent against the model's context (`models.local.n_ctx`);
- the observation against `obs_chars`, each HISTORY result against `result_chars`.

Writes docs/evidence/limits-<model>.md with the distributions (p50, p95, max) and the share of
steps at each limit, so a default is set from what the model does rather than guessed.

    .venv/bin/python experiments/limits.py --model qwen2.5-coder-1.5b RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from lbi.agents.react import EpisodeSettings
from lbi.config import Config
from lbi.models.catalogue import get
from lbi.store import RunStore
from lbi.tokens import PER_MESSAGE, gguf_tokenizer
from lbi.types import Step, Trajectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import machine  # noqa: E402

REASON_CAP = 600  # agents/parse.py react_grammar


def quantiles(values: list[int]) -> tuple[int, int, int]:
    """p50, p95 and max (nearest rank); zeros for no values."""
    if not values:
        return 0, 0, 0
    ordered = sorted(values)

    def rank(q: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return rank(0.5), rank(0.95), ordered[-1]


def row(name: str, values: list[int], limit: int, unit: str) -> str:
    p50, p95, top = quantiles(values)
    at = sum(v >= limit for v in values)
    share = f"{at} ({100 * at / len(values):.0f}%)" if values else "0"
    return f"| {name} | {limit:,} {unit} | {len(values)} | {p50:,} | {p95:,} | {top:,} | {share} |"


def measure(steps: list[Step], count: object, settings: EpisodeSettings, n_ctx: int) -> list[str]:
    assert callable(count)
    answers = [count(s.raw) for s in steps if s.raw]
    reasons = [len(s.reason) for s in steps if s.raw]
    prompts = [
        sum(count(str(m.get("content") or "")) + PER_MESSAGE for m in s.messages)
        for s in steps
        if s.messages
    ]
    observations = [len(s.observation) for s in steps]
    results = [len(s.next_observation) for s in steps]
    return [
        row("answer (REASON + ACTION)", answers, settings.max_tokens, "tokens"),
        row("REASON", reasons, REASON_CAP, "chars"),
        row("prompt sent", prompts, n_ctx, "tokens"),
        row("observation", observations, settings.obs_chars, "chars"),
        row("result (as HISTORY shows it)", results, settings.result_chars, "chars"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True, help="a catalogue name, e.g. qwen2.5-coder-1.5b")
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    model = get(args.model)
    path = model.pulled()
    if path is None:
        sys.exit(f"{args.model} is not pulled: `lbi models pull {args.model}`")
    tokenizer = gguf_tokenizer(str(path))

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    settings, n_ctx = EpisodeSettings(), Config().models.local.n_ctx
    by_variant: dict[str, list[Step]] = {}
    trajectories = 0
    for run in args.runs:
        store = RunStore(run)
        try:
            for traj in store.all(Trajectory):
                if traj.model.removeprefix("local:") != args.model or not traj.steps:
                    continue
                if traj.variant.startswith("floor:"):  # fixed actions: no model answered
                    continue
                trajectories += 1
                steps = [s for attempt in traj.attempts for s in attempt.steps] + traj.steps
                by_variant.setdefault(traj.variant, []).extend(steps)
        finally:
            store.close()
    lines = [
        f"# The act step's limits, measured with {model.title}",
        "",
        f"Written by `experiments/limits.py --model {args.model} "
        + " ".join(str(r) for r in args.runs)
        + f"`. {machine()}. "
        f"{trajectories} episodes of `local:{args.model}` (synthesis rollouts and evaluation "
        "episodes), counted with the model's own tokenizer (its GGUF's vocabulary).",
        "",
        "Each row is one limit of the act step (`EpisodeSettings`, the answer grammar's REASON "
        "cap, `models.local.n_ctx`): the values over all agent steps, and how many steps reach "
        "the limit (an answer at `max_tokens` was cut; an observation at `obs_chars` was cut in "
        "the prompt).",
    ]
    for variant, steps in sorted(by_variant.items()):
        lines += [
            "",
            f"## `{variant}`: {len(steps)} steps",
            "",
            "| what | limit | steps | p50 | p95 | max | at the limit |",
            "|---|---|---|---|---|---|---|",
            *measure(steps, count, settings, n_ctx),
        ]
    page = ROOT / "docs" / "evidence" / f"limits-{args.model}.md"
    page.write_text("\n".join(lines) + "\n")
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
