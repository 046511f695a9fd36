"""Benchmark: what backward construction + filtering cost per kept example, and pipeline overhead.

Part 1 — cost. The same trajectories (toy key-value store, 10-14 steps each, from a seeded
scripted policy with useful steps, errors with and without recovery, repeated reads and
back-and-forth) go through backward construction and the filter twice, in separate runs that
share nothing but the trajectories and have the call cache off: once under `all` (the paper:
every window, one window per labelling call, one example per judge call) and once under the
default `SynthConfig`. Both are judged by the same committee. We report backend calls and
tokens per kept example, the committee pass rate, and how many of the examples `all` keeps the
default keeps too (examples are identified by trajectory, window and style). Targets: >= 5x
fewer calls per kept example, >= 80% overlap. A sweep of other settings shows what moves them.

By default labeller and committee are `synthbench`, a rule-based stand-in for LLMs that reads
the rendered prompts (see COMMITTEE_CHECKS); `--model SPEC` (e.g. `openai:gpt-4o-mini`, `local`)
measures with a real model as labeller and judge instead. The trajectory generator, `synthbench`
and the timed model/env live in `lbi.testing.synth_doubles`; this script orchestrates and reports.

Part 2 — overhead. `lbi synth` (the pipeline in-process: tasks, rollout, backward, filter,
stats) on 200 tasks of a 70-section toy environment, against the fake OpenAI server in its own
process at 50 ms per answer. Overhead = 1 - (time when at least one model call or environment
step is in flight) / wall. Target <= 5%.

    .venv/bin/python bench/synth_cost.py [--trajectories 12] [--model SPEC] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbi import progress
from lbi.config import Config, config_from_dict
from lbi.pipeline import synth
from lbi.run import RunContext
from lbi.testing.synth_doubles import COMMITTEE, COMMITTEE_CHECKS, SPANS, make_tasks
from lbi.types import Task, Trajectory, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine, start_fake_openai, write_section

HEADING = "Synthesis cost"
# ------------------------------------------------------------------ part 1: cost --------------


def base_config(root: Path, model: str) -> Config:
    return config_from_dict(
        {
            "run_root": str(root),
            "model": model,
            "env": "toy",
            "embed": {"name": "hash"},
            "cache": {"enabled": False},  # every call is a real backend call
            "synth": {"max_steps": 16, "dedup_threshold": 1.0},
        }
    )


async def build_trajectories(
    root: Path, n: int, seed: int
) -> tuple[list[Task], list[Trajectory], Any]:
    """Roll the scripted policy out once; every policy run then gets these same trajectories."""
    tasks, kinds = make_tasks(n, seed)
    ctx = RunContext("trajectories", base_config(root, "scripted"))
    try:
        ctx.commit(tasks)
        await synth.run_rollout(ctx)
        trajs = synth.synth_trajectories(ctx)
    finally:
        await ctx.aclose()
    return tasks, trajs, kinds


@dataclass
class PolicyResult:
    name: str
    settings: str
    calls: dict[str, int]  # backward / filter backend calls
    tokens: int
    raw: int
    judged: int
    kept: set[tuple[str, int, int, str]]
    rejected_by: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    wall_s: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def per_kept(self, x: float) -> float:
        return x / len(self.kept) if self.kept else float("inf")


async def run_policy(
    root: Path, model: str, name: str, synth_set: dict[str, Any], data: list[Any]
) -> PolicyResult:
    """Backward + filter over the stored trajectories in a fresh run; count what it cost."""
    cfg = base_config(root, model)
    cfg.synth = cfg.synth.model_copy(update=synth_set)
    ctx = RunContext(name, cfg)
    start = time.perf_counter()
    try:
        ctx.commit(data)
        await synth.run_backward(ctx)
        await synth.run_filter(ctx)
        decisions = synth.decide(ctx)
        stages = ctx.accountant.snapshot()["stages"]
        verdicts = ctx.store.all(Verdict)
    finally:
        await ctx.aclose()
    s = cfg.synth
    rejected = collections.Counter(c for v in verdicts for c, ok in v.criteria.items() if not ok)
    st = [stages.get(k, {}) for k in ("backward", "filter")]
    return PolicyResult(
        name=name,
        settings=f"{s.backward_policy}, max_window {s.max_window if s.backward_policy != 'all' else '-'}, "
        f"backward_batch {1 if s.backward_policy == 'all' else s.backward_batch}, judge_batch {s.judge_batch}",
        calls={"backward": st[0].get("calls", 0), "filter": st[1].get("calls", 0)},
        tokens=sum(x.get("prompt_tokens", 0) + x.get("completion_tokens", 0) for x in st),
        raw=len(decisions),
        judged=len({v.example_id for v in verdicts}),
        kept={
            (d.example.trajectory_id, d.example.i, d.example.j, d.example.style)
            for d in decisions
            if d.kept
        },
        rejected_by=dict(rejected),
        failures=sum(x.get("failures", 0) for x in st),
        wall_s=time.perf_counter() - start,
    )


PAPER = {"backward_policy": "all", "judge_batch": 1}
SWEEP: list[tuple[str, dict[str, Any]]] = [
    ("judge_batch 8", {"judge_batch": 8}),
    ("judge_batch 8, backward_batch 12", {"judge_batch": 8, "backward_batch": 12}),
    ("max_window 10", {"max_window": 10}),
    ("max_window 10, judge_batch 8", {"max_window": 10, "judge_batch": 8}),
    ("max_window 14, judge_batch 8", {"max_window": 14, "judge_batch": 8}),
    ("boundaries", {"backward_policy": "boundaries"}),
]


async def compare_policies(
    root: Path, n: int = 12, seed: int = 0, model: str = COMMITTEE, sweep: bool = True
) -> dict[str, Any]:
    """Part 1: `all` vs the default (and the sweep) on the same trajectories."""
    tasks, trajs, kinds = await build_trajectories(root, n, seed)
    data = [*tasks, *trajs]
    paper = await run_policy(root, model, "all", PAPER, data)
    default = await run_policy(root, model, "default", {}, data)
    variants = []
    for k, (label, over) in enumerate(SWEEP if sweep else []):
        variants.append((label, await run_policy(root, model, f"sweep{k}", over, data)))
    return {
        "trajectories": trajs,
        "units": kinds,
        "all": paper,
        "default": default,
        "sweep": variants,
    }


def cost_lines(res: dict[str, Any], model: str) -> list[str]:
    paper: PolicyResult = res["all"]
    rows = [("`all` (the paper)", paper), ("default config", res["default"]), *res["sweep"]]
    steps = [len(t.steps) for t in res["trajectories"]]
    units = ", ".join(f"{k} {v}" for k, v in sorted(res["units"].items()))
    who = (
        f"`{COMMITTEE}`, a deterministic rule-based stand-in for an LLM labeller and committee: "
        "the labeller names the window's successful steps; the one judge (the committee) reads "
        "each rendered example and checks: "
        + "; ".join(f"**{c}** — {t}" for c, t in COMMITTEE_CHECKS.items())
        + ". Its verdict on an example does not depend on the batch it came in; an LLM's may."
        if model == COMMITTEE
        else f"`{model}` as labeller and as the one judge of the committee."
    )
    out = [
        f"{len(steps)} trajectories of {min(steps)}-{max(steps)} steps ({sum(steps)} steps) from a "
        f"seeded scripted policy on the toy store; units of work: {units}. Model: {who}",
        "",
        "Calls and tokens are backend calls of the backward and filter stages (cache off); rollout "
        "is shared. Pass rate = kept / judged; overlap = share of the examples `all` keeps "
        "(same trajectory, window, style) that this setting keeps too.",
        "",
        "| setting | backward calls | judge calls | raw examples | judged | kept | pass rate "
        "| calls/kept | tokens/kept | calls/kept vs `all` | overlap with `all` |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base_cpk = paper.per_kept(paper.total_calls)
    for label, r in rows:
        cpk = r.per_kept(r.total_calls)
        overlap = len(r.kept & paper.kept) / len(paper.kept) if paper.kept else 0.0
        out.append(
            f"| {label} ({r.settings}) | {r.calls['backward']} | {r.calls['filter']} | {r.raw} "
            f"| {r.judged} | {len(r.kept)} | {len(r.kept) / max(1, r.judged):.1%} | {cpk:.3f} "
            f"| {r.per_kept(r.tokens):,.0f} | {base_cpk / cpk:.2f}x fewer | {overlap:.1%} |"
        )
    d = res["default"]
    out += [
        "",
        f"Targets for the default: >= 5x fewer calls per kept example (measured "
        f"{base_cpk / d.per_kept(d.total_calls):.2f}x), >= 80% of `all`'s kept examples "
        f"(measured {len(d.kept & paper.kept) / max(1, len(paper.kept)):.1%}). Committee "
        f"rejections under `all`, by criterion: "
        + (", ".join(f"{c} {n}" for c, n in sorted(paper.rejected_by.items())) or "none")
        + f"; structured-output failures: all {paper.failures}, default {d.failures}.",
    ]
    long_kept = sum(1 for _, i, j, _ in paper.kept if j - i + 1 > 8)
    out.append(
        f"Of `all`'s {len(paper.kept)} kept examples, {long_kept} are windows longer than 8 steps "
        "(the default's max_window)."
    )
    return out


# -------------------------------------------------------------- part 2: overhead --------------

LATENCY = 0.05
REACT_ACTIONS = "list,set a 1,get a,submit"
STAGE_RUNS = {
    "tasks": synth.run_tasks,
    "rollout": synth.run_rollout,
    "backward": synth.run_backward,
    "filter": synth.run_filter,
}


def covered(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] during which at least one span is open (union of intervals)."""
    total, end = 0.0, lo
    for s, e in sorted(spans):
        s, e = max(s, end), min(e, hi)
        if e > s:
            total += e - s
            end = e
    return total


def start_server() -> tuple[subprocess.Popen[str], str]:
    return start_fake_openai(
        "--latency", str(LATENCY), "--array-items", "3", "--match-ids",
        "--react-actions", REACT_ACTIONS,
    )  # fmt: skip


def import_seconds() -> float:
    """The one-off cost of importing the openai backend, in a fresh process."""
    code = "import time; t = time.perf_counter(); import lbi.models.openai_backend; "
    code += "print(time.perf_counter() - t)"
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )


async def overhead(root: Path, base_url: str, tasks: int = 200) -> dict[str, Any]:
    """Part 2: `lbi synth` (every stage, then its stats) with calls and steps timed.

    The openai backend is imported before the clock starts; `import_seconds` reports that
    one-off cost apart, so the figure is the pipeline's own.
    """
    import lbi.models.openai_backend  # noqa: F401

    cfg = config_from_dict(
        {
            "run_root": str(root),
            "model": "timed:openai:fake",
            "env": "synthbench-toy",
            "embed": {"name": "hash"},
            "models": {"openai": {"base_url": base_url, "api_key_env": "LBI_BENCH_NO_KEY"}},
            "synth": {"max_tasks": tasks},
        }
    )
    SPANS.clear()
    t0 = time.perf_counter()
    ctx = RunContext("overhead", cfg)
    marks = [("setup", t0)]
    try:
        # What `lbi synth` runs (synth.run_all), stage by stage so the gaps can be attributed.
        decisions = None
        for stage, run in STAGE_RUNS.items():
            marks.append((stage, time.perf_counter()))
            out = await run(ctx)
            if stage == "filter":
                decisions = out  # as synth.run_all does: stats reuse the filter's decisions
            ctx.save_accounting()
        marks.append(("stats + close", time.perf_counter()))
        stats = synth.stats(ctx, decisions)
    finally:
        await ctx.aclose()
    t1 = time.perf_counter()
    marks.append(("end", t1))
    parts = []
    for (name, lo), (_, hi) in itertools.pairwise(marks):
        inside = [(a, z) for a, z in SPANS if lo <= a <= hi]
        first = min((a for a, _ in inside), default=hi)
        last = max((z for _, z in inside), default=hi)
        parts.append((name, hi - lo, hi - lo - covered(SPANS, lo, hi), first - lo, hi - last))
    wall = t1 - t0
    busy = covered(SPANS, t0, t1)
    in_flight = sum(e - s for s, e in SPANS)
    return {
        "wall": wall, "busy": busy, "parts": parts, "stats": stats, "spans": len(SPANS),
        "in_flight": in_flight, "concurrency": cfg.door.concurrency,
    }  # fmt: skip


def overhead_lines(o: dict[str, Any], imports: float) -> list[str]:
    st = o["stats"]
    calls = sum(s.get("calls", 0) for s in st["stages"].values())
    over = 1 - o["busy"] / o["wall"]
    per_stage = ", ".join(f"{k} {v.get('calls', 0)}" for k, v in st["stages"].items())
    out = [
        f"`lbi synth` in-process (tasks, rollout, backward, filter, stats; default config, "
        f"embed hash, fresh call cache) on the toy store with 70 doc sections, against the fake "
        f"OpenAI server (own process, 127.0.0.1, {LATENCY * 1000:.0f} ms per answer, "
        f"ReAct answers `{REACT_ACTIONS}`): {st['tasks']} tasks, {st['trajectories']} trajectories, "
        f"{st['raw_examples']} raw / {st['kept_examples']} kept examples, {calls} model calls "
        f"({per_stage}), "
        f"{o['spans'] - calls} environment resets/steps.",
        "",
        f"Wall {o['wall']:.2f} s; at least one model call or environment step in flight for "
        f"{o['busy']:.2f} s; **overhead {over:.1%}** (target <= 5%). Where the uncovered time is:",
        "",
        "| part | wall s | uncovered s | before its first call/step | after its last |",
        "|---|---|---|---|---|",
        *(f"| {n} | {w:.2f} | {u:.2f} | {a:.2f} | {z:.2f} |" for n, w, u, a, z in o["parts"]),
        "",
        f"Importing the openai backend (SDK + aiohttp) takes {imports:.2f} s once per process "
        f"(fresh process, measured apart, not in the wall above); counted in, the overhead is "
        f"{1 - o['busy'] / (o['wall'] + imports):.1%}. Calls and steps in flight add up to "
        f"{o['in_flight']:.1f} s, {o['in_flight'] / o['busy']:.2f} at a time on average (door "
        f"limit {o['concurrency']}); the ideal for {calls} calls of {LATENCY * 1000:.0f} ms at that "
        f"limit is {calls * LATENCY / o['concurrency']:.1f} s. Time the client spends on CPU inside "
        "a call (building requests, parsing answers, the event loop serving other work) counts "
        "as inside the call here.",
    ]
    return out


# ------------------------------------------------------------------------ report --------------


async def main(args: argparse.Namespace) -> str:
    """The section's body (under its `## HEADING`): part 1, then part 2."""
    progress.console.quiet = not args.progress
    lines = [
        f"`bench/synth_cost.py`: {machine()}. The machine is shared with other engineers' "
        "CPU-heavy jobs, so wall times are noisy; call and token counts are exact.",
        "",
        "### Calls per kept example: `all` vs the default",
        "",
    ]
    sweep = args.sweep if args.sweep is not None else args.model == COMMITTEE
    with tempfile.TemporaryDirectory() as tmp:
        res = await compare_policies(Path(tmp) / "s0", args.trajectories, 0, args.model, sweep)
        lines += cost_lines(res, args.model)
        for seed in range(1, args.seeds):
            r = await compare_policies(
                Path(tmp) / f"s{seed}", args.trajectories, seed, args.model, False
            )
            a, d = r["all"], r["default"]
            ratio = a.per_kept(a.total_calls) / d.per_kept(d.total_calls)
            lines.append(
                f"Seed {seed} (other trajectories): default {ratio:.2f}x fewer calls per kept "
                f"example, overlap {len(d.kept & a.kept) / max(1, len(a.kept)):.1%}."
            )
        print("\n".join(lines), flush=True)
        lines += ["", f"### Pipeline overhead: `lbi synth` on {args.tasks} tasks", ""]
        imports = import_seconds()
        proc, base_url = start_server()
        try:
            o = await overhead(Path(tmp) / "overhead", base_url, args.tasks)
        finally:
            proc.terminate()
            proc.wait(10)
        lines += overhead_lines(o, imports)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="synthesis cost and overhead benchmark")
    parser.add_argument("--trajectories", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3, help="trajectory sets for `all` vs default")
    parser.add_argument("--model", default=COMMITTEE, help="labeller and judge (default: scripted)")
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--progress", action="store_true", help="show stage progress bars")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    body = asyncio.run(main(args))
    print(f"## {HEADING}\n\n{body}")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}")
