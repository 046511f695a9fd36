"""Step latency of our MiniWoB wrapper against raw BrowserGym, same task, same run.

Both sides click the same checkbox of `click-checkboxes` over and over (a click toggles it and
never ends the episode), so every step does the same page work. Raw BrowserGym runs as
shipped (its chat window included); only its Chromium launch is wrapped to use Debian's
Chromium and our flags, since Playwright's own browser download does not exist here.

    python bench/web_step.py --steps 40 --write-docs

prints JSON and, with --write-docs, replaces the "## Web step latency" section of
docs/benchmarks.md (and nothing else).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from lbi.envs.web.browser import (
    CHROMIUM_FLAGS,
    MARKER,
    chromium_path,
    close_shared_browser,
    marker_token,
)
from lbi.envs.web.miniwob import MiniwobEnv, benchmark_task, miniwob_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

TASK = "click-checkboxes"
HEADING = "Web step latency"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def summary(resets: list[float], steps: list[float]) -> dict[str, Any]:
    return {
        "reset_p50_s": round(statistics.median(resets), 3),
        "step_p50_s": round(pct(steps, 0.5), 3),
        "step_p99_s": round(pct(steps, 0.99), 3),
        "steps": len(steps),
    }


def first_checkbox(tree: str) -> str:
    m = re.search(r"\[(\w+)\] checkbox", tree)
    if not m:
        raise SystemExit(f"no checkbox in the observation:\n{tree[:500]}")
    return m.group(1)


def bench_ours(steps: int, episodes: int) -> dict[str, Any]:
    env = MiniwobEnv()
    resets, times = [], []
    try:
        for ep in range(episodes):
            t = time.perf_counter()
            obs, _ = env.reset(benchmark_task(TASK), seed=ep)
            resets.append(time.perf_counter() - t)
            action = f"click('{first_checkbox(obs)}')"
            for _ in range(steps // episodes):
                t = time.perf_counter()
                _, _, done, _, info = env.step(action)
                times.append(time.perf_counter() - t)
                assert not info["error"] and not done, env.session.last_error
    finally:
        env.close()
        close_shared_browser()
    return summary(resets, times)


def _wrap_browsergym_launch() -> None:
    """BrowserGym passes its own args= and no executable_path: add ours around its call."""
    import browsergym.core

    pw = browsergym.core._get_global_playwright()
    launch = pw.chromium.launch
    token = marker_token()

    def wrapped(**kw: Any) -> Any:
        kw["executable_path"] = chromium_path()
        kw["args"] = [*kw.get("args", []), *CHROMIUM_FLAGS, MARKER + token]
        return launch(**kw)

    pw.chromium.launch = wrapped


def bench_browsergym(steps: int, episodes: int) -> dict[str, Any]:
    import browsergym.miniwob  # noqa: F401  (registers the gym ids)
    import gymnasium as gym
    from browsergym.utils.obs import flatten_axtree_to_str

    _wrap_browsergym_launch()
    env = gym.make(f"browsergym/miniwob.{TASK}")
    resets, times = [], []
    try:
        for ep in range(episodes):
            t = time.perf_counter()
            obs, _ = env.reset(seed=ep)
            resets.append(time.perf_counter() - t)
            action = f"click('{first_checkbox(flatten_axtree_to_str(obs['axtree_object']))}')"
            for _ in range(steps // episodes):
                t = time.perf_counter()
                obs, _, done, _, _ = env.step(action)
                times.append(time.perf_counter() - t)
                assert not obs["last_action_error"] and not done, obs["last_action_error"]
    finally:
        env.close()
    return summary(resets, times)


def write_docs(result: dict[str, Any]) -> None:
    ours, raw = result["ours"], result["browsergym"]
    body = "\n".join(
        [
            f"`python bench/web_step.py --steps {result['steps']}` — {result['machine']}.",
            f"Task `miniwob.{TASK}`, the same click repeated; both sides on Debian Chromium {result['chromium']}.",
            f"Load average at the start: {result['load_avg']}"
            + (
                "; the CPU was shared with other work, so absolute numbers are pessimistic."
                if result["busy"]
                else "."
            ),
            "",
            "| side | reset p50 (s) | step p50 (s) | step p99 (s) | steps |",
            "|---|---|---|---|---|",
            f"| ours (AXTree only; no DOM snapshot, no screenshot, 50 ms settle) | {ours['reset_p50_s']} | "
            f"{ours['step_p50_s']} | {ours['step_p99_s']} | {ours['steps']} |",
            f"| raw BrowserGym (AXTree + DOM + screenshot, 0.5 s pre-observation sleep, chat browser) | "
            f"{raw['reset_p50_s']} | {raw['step_p50_s']} | {raw['step_p99_s']} | {raw['steps']} |",
            "",
            f"Target: step p50 <= 0.5 s — {'met' if ours['step_p50_s'] <= 0.5 else 'NOT met'} by our wrapper.",
            "",
        ]
    )
    write_section(HEADING, body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MINIWOB_URL", miniwob_url())
    import subprocess

    version = subprocess.run(
        [chromium_path(), "--version"], capture_output=True, text=True
    ).stdout.split()
    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "chromium": version[1] if len(version) > 1 else "?",
        "load_avg": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "busy": os.getloadavg()[0] > (os.cpu_count() or 1),
        "steps": args.steps,
        "ours": bench_ours(args.steps, args.episodes),
        "browsergym": bench_browsergym(args.steps, args.episodes),
    }
    print(json.dumps(result, indent=2))
    if args.write_docs:
        write_docs(result)


if __name__ == "__main__":
    main()
