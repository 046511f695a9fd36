"""Reset and step latency of the desktop env, and how big its observations are.

Resets cycle over one Calc, one Writer and one Mousepad task (each reset starts Xvfb, the
buses and the application on a fresh file). Steps are the mix an agent sends: keys, typing,
element clicks by id; each step includes reading the accessibility tree back. Tokens are
lbi's estimate (pipeline.chunking.estimate_tokens), the one the context budget uses.

    python bench/desktop_step.py --resets 3 --steps 30 --write-docs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from lbi.envs.desktop import tasks
from lbi.envs.desktop.env import DesktopEnv
from lbi.tokens import estimate_tokens

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

HEADING = "Desktop step latency"
TASKS = ["calc-sum", "writer-append", "mousepad-append"]
STEPS = ['key("Down")', 'key("Up")', 'type("x")', 'key("BackSpace")', "click(1)"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resets", type=int, default=3, help="resets per application")
    ap.add_argument("--steps", type=int, default=30, help="steps per application")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    by_name = {t.name: t for t in tasks.load_suite(tasks.SUITE)}
    env = DesktopEnv()
    out: dict[str, dict[str, float]] = {}
    try:
        for name in TASKS:
            resets, steps, toks = [], [], []
            for _ in range(args.resets):
                t0 = time.perf_counter()
                obs, _ = env.reset(by_name[name], seed=0)
                resets.append(time.perf_counter() - t0)
                toks.append(estimate_tokens(obs))
            for i in range(args.steps):
                t0 = time.perf_counter()
                obs, *_ = env.step(STEPS[i % len(STEPS)])
                steps.append(time.perf_counter() - t0)
                toks.append(estimate_tokens(obs))
            out[name] = {
                "reset_p50_s": statistics.median(resets),
                "reset_max_s": max(resets),
                "step_p50_s": statistics.median(steps),
                "step_p99_s": pct(steps, 99),
                "obs_tokens_p50": statistics.median(toks),
                "obs_tokens_max": max(toks),
            }
    finally:
        env.close()
    print(json.dumps(out, indent=1))
    if args.write_docs:
        rows = [
            f"| {n} | {r['reset_p50_s']:.2f} | {r['reset_max_s']:.2f} | {r['step_p50_s']:.3f} "
            f"| {r['step_p99_s']:.3f} | {r['obs_tokens_p50']:.0f} | {r['obs_tokens_max']:.0f} |"
            for n, r in out.items()
        ]
        body = "\n".join(
            [
                f"`python bench/desktop_step.py --resets {args.resets} --steps {args.steps}`; "
                f"{machine()}. A step includes its settle pause (0.1 s) and reading the "
                "accessibility tree back. Target: step p50 <= 0.5 s.",
                "",
                "| task (app) | reset p50 s | reset max s | step p50 s | step p99 s "
                "| obs tokens p50 | obs tokens max |",
                "|---|---|---|---|---|---|---|",
                *rows,
            ]
        )
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
