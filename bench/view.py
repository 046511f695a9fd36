"""Benchmark: `lbi view` on synthetic runs of 10,000 and 100,000 examples.

Writes a run shaped like a real one (docs -> tasks -> 5-step trajectories with the exact
messages per step -> 11 windows x 2 styles each, one verdict per example, 10% rejected for
`natural`, plus an evaluation of 50 tasks x 7 variants x 3 seeds), starts the real command
(`python -m lbi view RUN --port P`) in its own process, and measures time to first byte for the
overview, a trajectory, the example list (page 1 and page 500) and a full-text search, with the
server's resident memory once it serves (the same at both sizes if it does not grow with the run).

    .venv/bin/python bench/view.py [--sizes 10000,100000] [--requests 100]

Replaces the "## Viewer" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from lbi.config import dump_config, load_config
from lbi.store import RunStore
from lbi.types import Doc, EvalResult, Example, Step, Task, Trajectory, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

WORDS = [
    f"{a}{b}"
    for a in ("rel", "tab", "col", "row", "key", "val", "idx", "qry")
    for b in (
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
        "mu",
        "nu",
        "xi",
        "pi",
        "rho",
        "tau",
        "phi",
        "chi",
    )
]
CRIT = ("achieves", "coherent", "natural", "reasonable")


def _step(rng: random.Random, t: int) -> Step:
    obs = " ".join(rng.choices(WORDS, k=60))
    action = f"SELECT {rng.choice(WORDS)} FROM {rng.choice(WORDS)} WHERE id = {rng.randint(1, 999)}"
    return Step(
        index=t,
        observation=obs,
        reason=f"look up {rng.choice(WORDS)}",
        action=action,
        next_observation=" ".join(rng.choices(WORDS, k=30)),
        messages=[
            {"role": "system", "content": "You act in a SQL database. " * 20},
            {"role": "user", "content": f"OBJECTIVE: ...\n\nOBSERVATION:\n{obs}"},
        ],
    )


def make_run(root: Path, n_examples: int) -> None:
    rng = random.Random(7)
    n_trajs = -(-n_examples // 22)  # 11 windows x 2 styles per 5-step trajectory
    cfg = load_config(
        None,
        [
            f"run_root={root.parent}",
            "model=scripted",
            "embed.name=hash",
            "env=toy",
            "synth.dedup_threshold=1.0",
        ],
    )
    with RunStore(root) as store:  # before config.yaml: a run folder without a store is damaged
        (root / "config.yaml").write_text(dump_config(cfg))
        docs = [
            Doc(env="toy", source=f"doc{d}.md", text=" ".join(rng.choices(WORDS, k=300)))
            for d in range(max(1, n_trajs // 10))
        ]
        store.put(docs)
        for k in range(0, n_trajs, 250):
            batch: list = []
            for n in range(k, min(k + 250, n_trajs)):
                task = Task(
                    env="toy",
                    instruction=f"Find {rng.choice(WORDS)} of {rng.choice(WORDS)} #{n}",
                    doc_id=docs[n % len(docs)].id,
                )
                steps = [_step(rng, t) for t in range(5)]
                traj = Trajectory(
                    task_id=task.id,
                    env="toy",
                    instruction=task.instruction,
                    model="scripted",
                    steps=steps,
                    success=True,
                    reward=1.0,
                )
                batch += [task, traj]
                for i in range(4):
                    for j in range(i, min(i + 3, 5)) if i < 3 else (i, i + 1):
                        for style in ("task", "replicate"):
                            words = " ".join(rng.choices(WORDS, k=6))
                            ex = Example(
                                env="toy",
                                instruction=f"{style}: {words}",
                                style=style,
                                trajectory_id=traj.id,
                                task_id=task.id,
                                i=i,
                                j=j,
                                policy="batched",
                                steps=steps[i : j + 1],
                            )
                            ok = rng.random() > 0.1
                            crit = {c: ok or c != "natural" for c in CRIT}
                            reasons = {c: "fine" if crit[c] else "reads like a log" for c in CRIT}
                            batch += [
                                ex,
                                Verdict(
                                    example_id=ex.id,
                                    judge="scripted",
                                    criteria=crit,
                                    reasons=reasons,
                                    accept=ok,
                                ),
                            ]
            store.put(batch)
        results: list = []
        for t in range(50):
            task = Task(env="toy", instruction=f"benchmark {t}", origin="benchmark", name=f"b{t}")
            results.append(task)
            for v in ("none", "docs", "instruction", "observation", "model", "both", "distill"):
                for s in range(3):
                    traj = Trajectory(
                        task_id=task.id,
                        env="toy",
                        instruction=task.instruction,
                        model="scripted",
                        seed=s,
                        variant=v,
                        steps=[_step(rng, i) for i in range(4)],
                    )
                    results += [
                        traj,
                        EvalResult(
                            suite="toy",
                            variant=v,
                            task_id=task.id,
                            model="scripted",
                            seed=s,
                            success=rng.random() < 0.5,
                            reward=0.0,
                            steps=4,
                            trajectory_id=traj.id,
                        ),
                    ]
        store.put(results)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ttfb(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        r.read(1)
        took = time.perf_counter() - start
        r.read()
    return took


def measure(root: Path, n_requests: int) -> dict[str, object]:
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbi", "view", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "lbi view: http://..." once the index is built
        while True:
            try:
                _ttfb(base + "/")
                break
            except OSError:
                time.sleep(0.05)
        ready = time.perf_counter() - started
        rng = random.Random(1)
        with RunStore(root) as store:
            trajs = [r[0] for r in store.fields(Trajectory, "id")][:2000]
        pages = {
            "overview": lambda: "/",
            "trajectory": lambda: f"/trajectory/{rng.choice(trajs)}",
            "examples p1": lambda: "/examples",
            "examples p500": lambda: "/examples?page=500",
            "search": lambda: f"/examples?q={rng.choice(WORDS)}+{rng.choice(WORDS)}",
        }
        out: dict[str, object] = {"ready_s": ready}
        for name, path in pages.items():
            times = sorted(_ttfb(base + path()) for _ in range(n_requests))
            out[name] = (statistics.median(times), times[int(0.99 * (len(times) - 1))])
        out["rss_mb"] = psutil.Process(proc.pid).memory_info().rss / 2**20
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lbi-bench-view-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            root = Path(tmp) / f"run{n}"
            t = time.perf_counter()
            make_run(root, n)
            made = time.perf_counter() - t
            size = (root / "run.sqlite").stat().st_size / 2**20
            with RunStore(root) as store:
                n = store.count(Example)
            m = measure(root, args.requests)
            print(n, f"made in {made:.0f}s ({size:.0f} MB)", m, flush=True)
            cells = " | ".join(
                f"{1000 * m[k][0]:.0f} / {1000 * m[k][1]:.0f}"  # type: ignore[index]
                for k in ("overview", "trajectory", "examples p1", "examples p500", "search")
            )
            rows.append(
                f"| {n:,} | {size:.0f} | {m['ready_s']:.1f} | {cells} | {m['rss_mb']:.0f} |"
            )
    body = f"""`bench/view.py`: `lbi view` (its own process) over synthetic runs; time to first byte in ms,
p50 / p99 over {args.requests} requests each (random trajectories, random two-word searches;
page 500 is examples 24,951-25,000; at 10,010 examples it is past the last page, an empty list). "ready" is start to first answer, including the one pass
that builds the viewer's index. RSS is the server's resident memory after all requests.
Targets: p50 <= 200 ms for a page, <= 300 ms for a search. {machine()}.

| examples | run MB | ready s | overview | trajectory | examples p1 | examples p500 | search | RSS MB |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows)
    write_section("Viewer", body)
    print(body)


if __name__ == "__main__":
    main()
