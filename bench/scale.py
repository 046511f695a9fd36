"""Scale bench: synthesis, store, index, retrieval, viewer, export and resume at 10k, 100k, 1M.

For each size N, one run of N kept examples is synthesized by `lbi synth` itself (every stage,
in-process) on `synthbench-toy:S` (the toy store with S doc sections, S = N / 60: 3 tasks per
section, 20 kept examples per task) against the fake OpenAI server (its own process, 127.0.0.1,
a fixed latency per answer, so the model is not the bottleneck). Then, on that run:
- synthesis: wall, model calls, the share of wall with no model call or environment step in
  flight (the pipeline's own overhead), peak RSS; the store's size and rows written per second;
- resume: `lbi synth` again on the finished run (time until it knows there is nothing to do);
- index: `lbi index build` (kept examples; the hash embedder, so embedding is not what is
  measured): wall and peak RSS;
- retrieval: the saved index loaded, then per step `observation`, `model` and `both`
  (p50 / p99 over 500 steps, query embedding included) and recall@5 of the dense search against
  exact search over the same vectors;
- viewer: `lbi view` in its own process: ready time (first start, which builds the derived
  index, and the next, which finds it cached), page and search p50 / p99, RSS (bench/view.py's
  measure);
- export: `lbi export --format hf` and `--format openai`: wall and peak RSS.
Every phase runs in its own process, so each peak RSS is that phase's alone. The growth
exponent between sizes (log ratio of a figure over log ratio of N) is printed beside each figure.

    .venv/bin/python bench/scale.py --save scale.json     # 10k, 100k, 1M; writes docs/benchmarks.md
    .venv/bin/python bench/scale.py --sizes 10000 --no-write
    .venv/bin/python bench/scale.py --from-saved scale.json   # the section again, from saved results
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, start_fake_openai, write_section

HEADING = "Scale"
LATENCY = 0.002  # seconds per fake answer
EXAMPLES_PER_TASK = 20  # the fake server's ReAct answers give 4 steps -> 20 kept windows x styles
STEPS = 500  # retrieval steps timed per variant
REACT_ACTIONS = "list,set a 1,get a,submit"


def run_config(root: Path, size: int, base_url: str) -> dict[str, Any]:
    tasks = size // EXAMPLES_PER_TASK
    return {
        "run_root": str(root),
        "model": "timed:openai:fake",
        "env": f"synthbench-toy:{math.ceil(tasks / 3)}",
        "embed": {"name": "hash"},
        "models": {"openai": {"base_url": base_url, "api_key_env": "LBI_BENCH_NO_KEY"}},
        "synth": {"max_tasks": tasks},
        "door": {"concurrency": 32},
        "cache": {"enabled": False},
    }


# ---------------------------------------------------------------- phases (own process each) ---


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _synth(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import lbi.models.openai_backend  # noqa: F401  (its import is not the pipeline's cost)
    from lbi.config import config_from_dict
    from lbi.pipeline import synth
    from lbi.run import RunContext
    from lbi.testing.synth_doubles import SPANS
    from synth_cost import covered

    SPANS.clear()
    t0 = time.perf_counter()
    ctx = RunContext(name, config_from_dict(cfg))
    try:
        row = await synth.run_all(ctx)
    finally:
        await ctx.aclose()
    wall = time.perf_counter() - t0
    return {"wall": wall, "busy": covered(SPANS, t0, t0 + wall), "row": row}


def phase(args: argparse.Namespace) -> dict[str, Any]:
    """One measured phase; runs in a process of its own (see `measured`)."""
    import lbi.testing.synth_doubles  # noqa: F401  (registers `timed:` and `synthbench-toy`)

    cfg = json.loads(args.config)
    name = args.name
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if args.phase in ("synth", "resume"):
        out = asyncio.run(_synth(name, cfg))
    elif args.phase == "index":
        from lbi.pipeline.indexes import build_index
        from lbi.run import existing_run

        ctx = existing_run(name, None, [f"run_root={cfg['run_root']}"])
        out["records"] = len(build_index(ctx, "examples"))
        ctx.store.close()
    elif args.phase == "retrieval":
        out = retrieval(name, cfg)
    elif args.phase.startswith("export-"):
        from lbi.cli import app

        fmt = args.phase.removeprefix("export-")
        dest = Path(cfg["run_root"]) / f"export-{fmt}"
        argv = ["export", name, "-f", fmt, "-o", str(dest), "--set", f"run_root={cfg['run_root']}"]
        try:
            app(argv, prog_name="lbi", standalone_mode=False)
        finally:
            shutil.rmtree(dest, ignore_errors=True) if dest.is_dir() else dest.unlink(True)
    out["wall"] = out.get("wall", time.perf_counter() - t0)
    out["rss_mb"] = _maxrss_mb()
    return out


def retrieval(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Load the saved index; time `observation`, `model` and `both` steps; dense recall@5."""
    import numpy as np

    from lbi.pipeline.indexes import index_dir
    from lbi.retrieval.examples import ExampleIndex, RetrievalQuery
    from lbi.run import existing_run
    from lbi.store import RunStore
    from lbi.types import Example

    ctx = existing_run(name, None, [f"run_root={cfg['run_root']}"])
    t = time.perf_counter()
    index = ExampleIndex.load(index_dir(ctx, "examples"), ctx.embedder())
    load_s = time.perf_counter() - t
    rng = random.Random(5)
    with RunStore(ctx.dir) as store:
        ids = [r[0] for r in store.fields(Example, "id")]
        probes = [store.get(Example, i) for i in rng.sample(ids, min(STEPS, len(ids)))]
    ctx.store.close()
    steps = [
        (p.steps[0].observation if p.steps else "", f"{p.instruction} then {p.steps[-1].action}")
        for p in probes
        if p is not None
    ]
    out: dict[str, Any] = {"load_s": load_s}
    shapes = {
        "observation": lambda o, q: RetrievalQuery(observation=o, m2=0),
        "model": lambda o, q: RetrievalQuery(observation=o, query=q, m1=0),
        "both": lambda o, q: RetrievalQuery(observation=o, query=q),
    }
    for variant, make in shapes.items():
        times = []
        for obs, query in steps:
            q = make(obs, query)
            s = time.perf_counter()
            index.retrieve(q)
            times.append(time.perf_counter() - s)
        times.sort()
        out[variant] = (statistics.median(times), times[int(0.99 * (len(times) - 1))])
    matrix = index.text.dense.vectors()
    hits = 0
    for _, query in steps[:200]:
        vec = index.text.embedder.embed([query])[0]
        truth = matrix @ vec
        kth = np.partition(truth, -5)[-5]  # a hit as good as the 5th exact one is right (ties)
        got = [index.text._pos[i] for i, _ in index.search_dense(query, 5)]
        hits += sum(truth[p] >= kth - 1e-5 for p in got)
    out["recall5"] = hits / (5 * min(200, len(steps)))
    out["approximate"] = index.text.dense.approximate
    return out


def measured(name: str, which: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one phase in a fresh process; its JSON result (with that process's peak RSS)."""
    cmd = [sys.executable, __file__, "--phase", which, "--name", name, "--config", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if proc.returncode or not last or not last[0].startswith("RESULT "):
        raise RuntimeError(f"phase {which} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(last[0].removeprefix("RESULT "))
    print(f"{name} {which}: {json.dumps(result)[:400]}", flush=True)
    return result


# ------------------------------------------------------------------------ one size -----------


def one_size(size: int, root: Path, base_url: str, requests: int) -> dict[str, Any]:
    from lbi.store import RunStore
    from lbi.types import Example, Trajectory, Verdict
    from view import measure

    name = f"n{size}"
    cfg = run_config(root, size, base_url)
    res: dict[str, Any] = {"size": size}
    res["synth"] = measured(name, "synth", cfg)
    run_dir = root / name
    store_bytes = sum(f.stat().st_size for f in run_dir.glob("run.sqlite*"))
    with RunStore(run_dir) as store:
        rows = sum(store.count(k) for k in (Example, Verdict, Trajectory))
        res["kept"] = res["synth"]["row"].get("kept_examples", store.count(Example))
        res["examples"] = store.count(Example)
    res["store_mb"] = store_bytes / 2**20
    res["rows_per_s"] = rows / res["synth"]["wall"]
    res["resume"] = measured(name, "resume", cfg)
    res["index"] = measured(name, "index", cfg)
    res["retrieval"] = measured(name, "retrieval", cfg)
    res["viewer"] = measure(run_dir, requests)  # first start: builds the derived index
    res["viewer_warm"] = measure(run_dir, 3)  # next start: the cached index
    for fmt in ("hf", "openai"):
        res[f"export-{fmt}"] = measured(name, f"export-{fmt}", cfg)
    print(f"{size}: store {res['store_mb']:.0f} MB; viewer {res['viewer']}", flush=True)
    return res


# ------------------------------------------------------------------------ report -------------

FIGURES: list[tuple[str, str, Any]] = [
    ("kept examples", "", lambda r: r["kept"]),
    ("synthesis wall", "s", lambda r: r["synth"]["wall"]),
    (
        "synthesis overhead (no call or step in flight)",
        "%",
        lambda r: 100 * (1 - r["synth"]["busy"] / r["synth"]["wall"]),
    ),
    ("synthesis peak RSS", "MB", lambda r: r["synth"]["rss_mb"]),
    ("store size", "MB", lambda r: r["store_mb"]),
    ("rows written per second", "", lambda r: r["rows_per_s"]),
    ("resume of the finished run", "s", lambda r: r["resume"]["wall"]),
    ("index build", "s", lambda r: r["index"]["wall"]),
    ("index build peak RSS", "MB", lambda r: r["index"]["rss_mb"]),
    ("index load", "s", lambda r: r["retrieval"]["load_s"]),
    ("retrieval `observation` p50", "ms", lambda r: 1000 * r["retrieval"]["observation"][0]),
    ("retrieval `observation` p99", "ms", lambda r: 1000 * r["retrieval"]["observation"][1]),
    ("retrieval `model` p50", "ms", lambda r: 1000 * r["retrieval"]["model"][0]),
    ("retrieval `model` p99", "ms", lambda r: 1000 * r["retrieval"]["model"][1]),
    ("retrieval `both` p50", "ms", lambda r: 1000 * r["retrieval"]["both"][0]),
    ("retrieval `both` p99", "ms", lambda r: 1000 * r["retrieval"]["both"][1]),
    ("dense recall@5 vs exact", "", lambda r: r["retrieval"]["recall5"]),
    ("retrieval process peak RSS", "MB", lambda r: r["retrieval"]["rss_mb"]),
    ("viewer ready, first start", "s", lambda r: r["viewer"]["ready_s"]),
    ("viewer ready, next start", "s", lambda r: r["viewer_warm"]["ready_s"]),
    ("viewer examples p1 p50", "ms", lambda r: 1000 * r["viewer"]["examples p1"][0]),
    ("viewer examples p500 p50", "ms", lambda r: 1000 * r["viewer"]["examples p500"][0]),
    ("viewer trajectory p50", "ms", lambda r: 1000 * r["viewer"]["trajectory"][0]),
    ("viewer search p50", "ms", lambda r: 1000 * r["viewer"]["search"][0]),
    ("viewer search p99", "ms", lambda r: 1000 * r["viewer"]["search"][1]),
    ("viewer RSS", "MB", lambda r: r["viewer"]["rss_mb"]),
    ("export hf", "s", lambda r: r["export-hf"]["wall"]),
    ("export hf peak RSS", "MB", lambda r: r["export-hf"]["rss_mb"]),
    ("export openai", "s", lambda r: r["export-openai"]["wall"]),
    ("export openai peak RSS", "MB", lambda r: r["export-openai"]["rss_mb"]),
]


def _fmt(v: float) -> str:
    if isinstance(v, int) or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"


def exponent(a: float, b: float, na: int, nb: int) -> str:
    if a <= 0 or b <= 0:
        return "-"
    return f"{math.log(b / a) / math.log(nb / na):+.2f}"


def table(results: list[dict[str, Any]]) -> str:
    sizes = [r["size"] for r in results]
    kept = [r["kept"] for r in results]  # growth is per kept example (dedup trims the tasks)
    head = ["figure", *(f"{n:,}" for n in sizes)]
    head += [f"growth {a:,}→{b:,}" for a, b in itertools.pairwise(sizes)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, unit, get in FIGURES:
        vals = [get(r) for r in results]
        cells = [_fmt(v) for v in vals]
        growth = [
            exponent(vals[i], vals[i + 1], kept[i], kept[i + 1]) for i in range(len(vals) - 1)
        ]
        lines.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells + growth))
        lines[-1] += " |"
    return "\n".join(lines)


# Issue 30's targets, checked at the largest size: (what, met?) from the results.
def targets(results: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    big, small = results[-1], results[0]
    n = f"{big['size']:,}"

    def growth(get: Any) -> float:
        a, b = get(small), get(big)
        return math.log(b / a) / math.log(big["kept"] / small["kept"]) if a > 0 < b else 0.0

    both_p50 = 1000 * big["retrieval"]["both"][0]
    pages = [1000 * big["viewer"][k][0] for k in PAGES]
    linear = [(label, growth(get)) for label, _, get in FIGURES[1:] if label not in PER_STEP]
    worst = max(linear, key=lambda x: x[1])
    step = max((growth(get), label) for label, _, get in FIGURES if label in SUBLINEAR)
    return [
        (
            f"retrieval `both` p50 ≤ 10 ms with recall@5 ≥ 0.95 at {n}: {both_p50:.1f} ms, "
            f"recall@5 {big['retrieval']['recall5']:.3f}",
            both_p50 <= 10 and big["retrieval"]["recall5"] >= 0.95,
        ),
        (
            f"index build ≤ 10 min and RSS ≤ 4 GiB at {n}: {big['index']['wall'] / 60:.1f} min, "
            f"{big['index']['rss_mb'] / 1024:.2f} GiB",
            big["index"]["wall"] <= 600 and big["index"]["rss_mb"] <= 4096,
        ),
        (
            f"viewer ready ≤ 60 s and pages p50 ≤ 200 ms at {n}: first start "
            f"{big['viewer']['ready_s']:.0f} s (next start {big['viewer_warm']['ready_s']:.1f} s), "
            f"slowest page p50 {max(pages):.0f} ms",
            big["viewer"]["ready_s"] <= 60 and max(pages) <= 200,
        ),
        (
            "export peak RSS independent of the run's size (≤ 1.15× the smallest run's): hf "
            f"{big['export-hf']['rss_mb']:.0f} vs {small['export-hf']['rss_mb']:.0f} MB, openai "
            f"{big['export-openai']['rss_mb']:.0f} vs {small['export-openai']['rss_mb']:.0f} MB",
            all(
                big[k]["rss_mb"] <= 1.15 * small[k]["rss_mb"]
                for k in ("export-hf", "export-openai")
            ),
        ),
        (
            f"resume of a finished run ≤ 10 s at {n}: {big['resume']['wall']:.2f} s",
            big["resume"]["wall"] <= 10,
        ),
        (
            f"every figure grows at most linearly ({small['size']:,}→{n}, exponent ≤ 1.05): "
            f"largest {worst[1]:+.2f} ({worst[0]})",
            worst[1] <= 1.05,
        ),
        (f"per-step retrieval grows sub-linearly: largest {step[0]:+.2f} ({step[1]})", step[0] < 1),
    ]


PAGES = ("overview", "trajectory", "examples p1", "examples p500", "search")
PER_STEP = {label for label, _, _ in FIGURES if label.startswith("retrieval `")}
SUBLINEAR = {label for label in PER_STEP if "p50" in label}  # p99s of sub-ms steps are noise


def report(results: list[dict[str, Any]], facts: str, minutes: float) -> str:
    checks = targets(results) if len(results) > 1 else []
    return "\n".join(
        [
            f"`bench/scale.py`: {facts}; load average {os.getloadavg()[0]:.1f} at the end; the "
            f"whole bench took {minutes:.0f} min.",
            "",
            "Each run is synthesized by `lbi synth` (every stage, in-process, call cache off, door "
            "concurrency 32) on `synthbench-toy:S` (S doc sections, 3 tasks each) against the fake "
            f"OpenAI server (own process, 127.0.0.1, {LATENCY * 1000:.0f} ms per answer, ReAct "
            f"answers `{REACT_ACTIONS}`); the index uses the hash embedder. Each phase runs in a "
            "process of its own, so each peak RSS is that phase's. Growth is the exponent k in "
            "figure ∝ N^k between two sizes, N the kept examples (1 = linear; task dedup keeps "
            "fewer than the nominal size).",
            "",
            table(results),
            "",
            "Targets (issue 30), checked by the script at the largest size:",
            "",
            *(f"- {'met' if ok else '**missed**'}: {what}" for what, ok in checks),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--root", default="", help="keep the runs here (default: a temp folder)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--save", default="", help="also write the raw results (JSON) here")
    ap.add_argument("--from-saved", default="", help="only write the report of saved results")
    ap.add_argument("--phase", default="")
    ap.add_argument("--name", default="")
    ap.add_argument("--config", default="")
    args = ap.parse_args()
    if args.phase:
        print("RESULT " + json.dumps(phase(args)), flush=True)
        return
    if args.from_saved:
        saved = json.loads(Path(args.from_saved).read_text())
        body = report(saved["results"], saved["facts"], saved["minutes"])
    else:
        body = run_sizes(args)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)


def run_sizes(args: argparse.Namespace) -> str:
    facts = machine()
    started = time.perf_counter()
    server, base_url = start_fake_openai(
        "--latency", str(LATENCY), "--array-items", "3", "--match-ids",
        "--react-actions", REACT_ACTIONS,
    )  # fmt: skip
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="lbi-bench-scale-", dir=args.root or None) as tmp:
            for size in (int(x) for x in args.sizes.split(",")):
                results.append(one_size(size, Path(tmp), base_url, args.requests))
                print(table(results), flush=True)
                if args.save:  # after each size, so a long run that dies keeps what it measured
                    minutes = (time.perf_counter() - started) / 60
                    saved = {"facts": facts, "minutes": minutes, "results": results}
                    Path(args.save).write_text(json.dumps(saved, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return report(results, facts, (time.perf_counter() - started) / 60)


if __name__ == "__main__":
    os.environ.setdefault("LBI_BENCH_NO_KEY", "none")
    main()
