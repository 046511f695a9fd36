"""Benchmark: every tau2 telecom task (2,285) replayed through `tau2.telecom`, scored by tau2.

For each task: the gold replay (the agent's gold calls, each of the customer's asked of them and
made on their phone by the scripted customer, `Domain.reference`), then the same without the
last write (the agent's or the customer's; tasks without one are counted). Reports how many
score 1.0 and 0.0, and the wall time, split over worker processes by task index.

    .venv/bin/python bench/tau2_telecom_replay.py [--workers 2]

Replaces the "## tau2 telecom replay" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

SUITE = "tau2-telecom-full"


def replay(part: int, parts: int) -> dict[str, tuple[float, float | None]]:
    from lbi.config import Config
    from lbi.envs.tau2.env import Tau2Env

    env = Tau2Env("telecom", Config(run_root=tempfile.mkdtemp(), model="scripted"))
    d = env.domain

    def play(task, actions):  # type: ignore[no-untyped-def]
        env.reset(task, seed=0)
        reward = 0.0
        for action in actions:
            _, reward, terminated, _, _ = env.step(action)
            if terminated:
                break
        return reward

    out: dict[str, tuple[float, float | None]] = {}
    for i, task in enumerate(env.load_suite(SUITE)):
        if i % parts != part:
            continue
        t = d.tasks[task.setup["tau2_task_id"]]
        acts = d.gold_actions(t)
        writes = [k for k, a in enumerate(acts) if d.is_write(a.name, a.requestor)]
        dropped = [a for k, a in enumerate(acts) if writes and k != writes[-1]]
        drop = play(task, d.reference(t, dropped)) if writes else None
        out[task.name] = (play(task, task.reference), drop)
    env.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    where = machine()
    start = time.perf_counter()
    results: dict[str, tuple[float, float | None]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for part in pool.map(replay, range(args.workers), [args.workers] * args.workers):
            results.update(part)
    wall = time.perf_counter() - start
    gold = Counter(g for g, _ in results.values())
    drop = Counter(d for _, d in results.values() if d is not None)
    no_write = sum(d is None for _, d in results.values())
    body = f"""
`python bench/tau2_telecom_replay.py --workers {args.workers}` on {where}.

Every telecom task in the package (`{SUITE}`), replayed through `tau2.telecom` with the scripted
customer making the phone calls the agent asks for, scored by tau2's own evaluator.

| | tasks | score 1.0 | score 0.0 | other |
|---|---|---|---|---|
| gold replay | {len(results)} | {gold[1.0]} | {gold[0.0]} | {len(results) - gold[1.0] - gold[0.0]} |
| without the last write | {sum(drop.values())} | {drop[1.0]} | {drop[0.0]} | {sum(drop.values()) - drop[1.0] - drop[0.0]} |

{no_write} tasks have no write among their gold actions (only `transfer_to_human_agents`).
Wall time {wall:.0f} s for {len(results) + sum(drop.values())} replays in {args.workers} processes
({wall * args.workers / (len(results) + sum(drop.values())):.2f} process-seconds a replay).
"""
    write_section("tau2 telecom replay", body)
    print(body)


if __name__ == "__main__":
    main()
