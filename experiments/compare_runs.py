"""One variant of two runs, paired per task: what a change to lbi did to the same model's score.

Each side is a run folder and a variant (`RUN_DIR:VARIANT`, e.g. an `lbi experiment paper` run
made before a change and an `lbi eval` run made after it, same model, suite and settings). The
page lists every task's outcome on both sides, the paired difference with its 95% CI, the exact
sign test and the smallest difference the suite can detect (`lbi.eval.stats.compare`), and which
wins are on tasks the empty-answer floor also solves. Writes docs/evidence/PAGE.md.

    .venv/bin/python experiments/compare_runs.py --before runs/a:none --after runs/b:none \\
        --title "HISTORY with REASON" --page history-reason-qwen-1.5b --command "..."
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lbi.eval.stats import compare
from lbi.store import RunStore
from lbi.types import EvalResult

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import machine  # noqa: E402

FLOOR = "floor:empty"


def results(side: str) -> tuple[Path, str, list[EvalResult]]:
    folder, _, variant = side.rpartition(":")
    store = RunStore(Path(folder))
    try:
        return Path(folder), variant, store.all(EvalResult)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", required=True, help="RUN_DIR:VARIANT")
    parser.add_argument("--after", required=True, help="RUN_DIR:VARIANT")
    parser.add_argument("--title", required=True)
    parser.add_argument("--page", required=True)
    parser.add_argument("--command", default="", help="how each side was made, for the page")
    args = parser.parse_args(argv)
    before_dir, before_v, before = results(args.before)
    after_dir, after_v, after = results(args.after)
    pairs = [r.model_copy(update={"variant": "before"}) for r in before if r.variant == before_v]
    pairs += [r.model_copy(update={"variant": "after"}) for r in after if r.variant == after_v]
    floor = {r.task_id for r in [*before, *after] if r.variant == FLOOR and r.success}
    c = compare(pairs, "after", "before")
    side: dict[str, dict[str, bool]] = {"before": {}, "after": {}}
    names: dict[str, str] = {}
    for r in pairs:
        side[r.variant][r.task_id] = r.success
        names[r.task_id] = r.task_id
    tasks = sorted(side["before"].keys() & side["after"].keys())
    model = {r.model for r in pairs}
    mde = f"{100 * c.mde:.1f}" if c.mde is not None else "—"
    lines = [
        f"# {args.title}",
        "",
        f"Written by `experiments/compare_runs.py --before {args.before} --after {args.after}`. "
        f"{machine()}. Model: {', '.join(sorted(model))}; suite: "
        f"{', '.join(sorted({r.suite for r in pairs}))}.",
        *(["", f"How the sides were made: {args.command}"] if args.command else []),
        "",
        "| side | run | variant | tasks | successes | success % |",
        "|---|---|---|---|---|---|",
        f"| before | `{before_dir.name}` | `{before_v}` | {len(tasks)} | "
        f"{sum(side['before'][t] for t in tasks)} | {100 * c.baseline_rate:.1f} |",
        f"| after | `{after_dir.name}` | `{after_v}` | {len(tasks)} | "
        f"{sum(side['after'][t] for t in tasks)} | {100 * c.variant_rate:.1f} |",
        "",
        f"Paired difference (after − before): {100 * c.diff:+.1f} pp, 95% CI "
        f"[{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]; better on {c.n_better} tasks, worse "
        f"on {c.n_worse}; exact sign test p = {c.p_value:.3f}; smallest detectable difference "
        f"{mde} pp. {'Detected' if c.ci_low > 0 or c.ci_high < 0 else 'Not detected'}: the CI "
        f"{'excludes' if c.ci_low > 0 or c.ci_high < 0 else 'includes'} 0.",
        "",
        f"Tasks the empty-answer floor solves: {len(floor & set(tasks))} of {len(tasks)}. Wins on "
        f"them: before {sum(side['before'][t] for t in tasks if t in floor)}, after "
        f"{sum(side['after'][t] for t in tasks if t in floor)}.",
        "",
        "| task | before | after | floor solves it |",
        "|---|---|---|---|",
        *(
            f"| `{names[t]}` | {int(side['before'][t])} | {int(side['after'][t])} | "
            f"{'yes' if t in floor else ''} |"
            for t in tasks
        ),
    ]
    page = ROOT / "docs" / "evidence" / f"{args.page}.md"
    page.write_text("\n".join(lines) + "\n")
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
