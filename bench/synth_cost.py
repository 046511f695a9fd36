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
measures with a real model as labeller and judge instead.

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
import datetime
import itertools
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbi import progress
from lbi.config import Config, config_from_dict
from lbi.envs.base import StepResult, register_env
from lbi.envs.toy import ToyEnv
from lbi.models.base import Capabilities, ChatRequest, ChatResponse, Model
from lbi.models.registry import make_model, register
from lbi.models.scripted import Handler, ScriptedModel
from lbi.pipeline import synth
from lbi.run import RunContext
from lbi.types import Doc, Task, Trajectory, Verdict

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADING = "## Synthesis cost"
COMMITTEE = "synthbench"
KEYS = ["a", "b", "c", "color", "size", "city", "owner", "mode", "level", "price", "tag", "user", "count", "limit", "region", "status", "theme", "lang", "zone", "plan"]  # fmt: skip
VALUES = ["1", "2", "3", "7", "42", "red", "blue", "green", "big", "small", "paris", "oslo", "on", "off", "high", "low"]  # fmt: skip
# Unit kinds of the scripted policy and their weights: useful, recovered errors, flaws.
UNITS = {
    "write": 3.0, "update": 1.0, "delete": 1.0, "copy": 1.5, "verify": 1.5,
    "recovered-missing-read": 1.0, "recovered-malformed": 0.7,
    "unrecovered-delete": 0.6, "repeated-read": 0.8, "undo": 0.6, "overwrite": 0.6,
}  # fmt: skip

# ---------------------------------------------------------------- trajectories ----------------


def _unit(kind: str, state: dict[str, str], rng: random.Random, written: set[str]) -> list[str]:
    """The actions of one unit of work, applied to `state`; [] when it does not apply now."""
    new = [k for k in KEYS if k not in state]
    old = [k for k in sorted(state) if k not in written]
    v = rng.choice(VALUES)
    if kind in ("write", "recovered-missing-read", "recovered-malformed") and new:
        k = rng.choice(new)
        state[k] = v
        written.add(k)
        pre = {
            "write": [],
            "recovered-missing-read": [f"get {k}"],
            "recovered-malformed": [f"set {k}"],
        }
        return [*pre[kind], f"set {k} {v}"]
    if kind in ("update", "delete") and old:
        k = rng.choice(old)
        written.add(k)
        if kind == "delete":
            del state[k]
            return [f"delete {k}"]
        state[k] = v
        return [f"set {k} {v}"]
    if kind == "copy" and state and new:
        src, dst = rng.choice(sorted(state)), rng.choice(new)
        state[dst] = state[src]
        written.add(dst)
        return [f"get {src}", f"set {dst} {state[src]}"]
    if kind == "verify" and written & set(state):
        return [f"get {rng.choice(sorted(written & set(state)))}"]
    if kind == "unrecovered-delete" and new:
        return [f"delete {rng.choice(new)}"]
    if kind == "repeated-read" and state:
        k = rng.choice(sorted(state))
        return [f"get {k}", f"get {k}"]
    if kind in ("undo", "overwrite") and new:
        k = rng.choice(new)
        if kind == "undo":
            return [f"set {k} {v}", f"delete {k}"]
        state[k] = rng.choice([x for x in VALUES if x != v])
        written.add(k)
        return [f"set {k} {v}", f"set {k} {state[k]}"]
    return []


def make_tasks(n: int, seed: int) -> tuple[list[Task], collections.Counter[str]]:
    """`n` toy tasks whose reference solutions (10-14 steps) the scripted policy replays."""
    rng = random.Random(seed)
    kinds: collections.Counter[str] = collections.Counter()
    tasks = []
    for _ in range(n):
        state = {k: rng.choice(VALUES) for k in rng.sample(KEYS, 3)}
        start, written, actions = dict(state), set[str](), ["list"]
        length = rng.randint(10, 14)
        while len(actions) < length - 1:
            kind = rng.choices(list(UNITS), weights=list(UNITS.values()))[0]
            trial, trial_written = dict(state), set(written)
            unit = _unit(kind, trial, rng, trial_written)
            if unit and len(actions) + len(unit) <= length - 1:
                actions += unit
                state, written = trial, trial_written
                kinds[kind] += 1
        final = ", ".join(f"{k}={v}" for k, v in sorted(state.items()))
        tasks.append(
            Task(
                env="toy",
                instruction=f"Bring the store to exactly this state: {final}.",
                setup={"state": start},
                origin="user",
                gold={"state": state},
                reference=[*actions, "submit"],
            )
        )
    return tasks, kinds


# ------------------------------------------------- the scripted labeller and committee --------

COMMITTEE_CHECKS = {
    "achieves": "the window's last step succeeds, and every clause of the instruction (set K to"
    " V / delete K / read K / list the store) has a step in the window whose result shows it done",
    "coherent": "every failed step is recovered later in the window (a successful `set` of the"
    " same key), and no failed action is retried verbatim",
    "natural": "the instruction asks for at least one concrete thing (not only `submit`)",
    "reasonable": "no repeated read (the same `get K`, or `list`, twice with no successful write"
    " in between), no undo (a key set and then deleted), no overwrite (a key set twice)",
}
_BLOCK = re.compile(r'<(excerpt|example) id="(\d+)">\n(.*?)\n</\1>', re.S)
_STEP = re.compile(
    r"Observation: .*?\nREASON: .*?\nACTION: (.*?)\n(?=Observation: |Result: )", re.S
)
_CLAUSE = re.compile(r"set (\w+) to (\w+)|delete (\w+)|read (\w+)|list the store", re.I)

Window = list[tuple[str, str]]  # (action, result) per step


def parse_window(body: str) -> tuple[str, Window]:
    """(instruction or "", steps) from one rendered excerpt/example (see prompts/example.j2)."""
    instruction = ""
    if body.startswith("Instruction: "):
        instruction, _, body = body.partition("\n")
        instruction = instruction.removeprefix("Instruction: ")
    actions = [m.group(1).strip() for m in _STEP.finditer(body + "\n")]
    observations = re.findall(r"^Observation: (.*?)(?=\nREASON: )", body, re.S | re.M)
    results = [*observations[1:], body.rpartition("\nResult: ")[2]]
    return instruction, list(zip(actions, results, strict=False))


def _ok(result: str) -> bool:
    return not result.startswith("Error")


def describe(steps: Window) -> tuple[str, str]:
    """The labeller: (task, replicate) naming what the successful steps did."""
    clauses = []
    for action, result in steps:
        p = action.split()
        if not _ok(result) or not p:
            continue
        if p[0] == "set" and len(p) == 3:
            clauses.append(f"set {p[1]} to {p[2]}")
        elif p[0] in ("delete", "get") and len(p) == 2:
            clauses.append(f"{'read' if p[0] == 'get' else 'delete'} {p[1]}")
        elif p[0] == "list":
            clauses.append("list the store")
    if not clauses:
        return "Submit the store as it is.", "Replicate the following: submit the store."
    text = ", then ".join(clauses)
    return text[0].upper() + text[1:] + ".", f"Replicate the following: {text}."


def _shown(clause: re.Match[str], steps: Window) -> bool:
    """Whether a step of the window did what one instruction clause says, by its result."""
    if clause[0].lower() == "list the store":
        want = "list"
    elif clause[1]:
        want = f"set {clause[1]} {clause[2]}"
    else:
        want = f"delete {clause[3]}" if clause[3] else f"get {clause[4]}"
    return any(a == want and _ok(r) for a, r in steps)


def _wasted(steps: Window) -> list[str]:
    seen: set[str] = set()  # reads since the last successful write
    written: set[str] = set()
    out = []
    for a, r in steps:
        p = a.split()
        if not _ok(r) or not p:
            continue
        if p[0] in ("get", "list"):
            if a in seen:
                out.append(f"repeated read: {a}")
            seen.add(a)
        elif p[0] in ("set", "delete") and len(p) >= 2:
            seen.clear()
            if p[1] in written:
                out.append(f"{'undo' if p[0] == 'delete' else 'overwrite'} of {p[1]}")
            if p[0] == "set":
                written.add(p[1])
    return out


def committee(instruction: str, steps: Window) -> dict[str, tuple[bool, str]]:
    """The committee's verdict per criterion, with a reason (see COMMITTEE_CHECKS)."""
    missing = [m[0] for m in _CLAUSE.finditer(instruction) if not _shown(m, steps)]
    last_ok = bool(steps) and _ok(steps[-1][1])
    bad = []
    for n, (a, r) in enumerate(steps):
        if _ok(r):
            continue
        key, later = [*a.split(), "", ""][1], steps[n + 1 :]
        if not any(b.startswith(f"set {key} ") and _ok(s) for b, s in later):
            bad.append(f"unrecovered error: {a}")
        if later and later[0][0] == a:
            bad.append(f"blind retry: {a}")
    natural = bool(_CLAUSE.search(instruction))
    waste = _wasted(steps)
    return {
        "achieves": (
            last_ok and not missing,
            f"not shown done: {', '.join(missing)}"
            if missing
            else ("every clause shown done" if last_ok else "the last step failed"),
        ),
        "coherent": (not bad, "; ".join(bad) or "errors are recovered"),
        "natural": (
            natural,
            "asks for concrete changes" if natural else "asks for nothing concrete",
        ),
        "reasonable": (not waste, "; ".join(waste) or "no wasted steps"),
    }


def _prompt(req: ChatRequest) -> str:
    return str(next(m["content"] for m in req.messages if m["role"] == "user"))


def _label_handler(req: ChatRequest) -> str:
    labels = []
    for _, n, body in _BLOCK.findall(_prompt(req)):
        task, replicate = describe(parse_window(body)[1])
        labels.append({"window": int(n), "task": task, "replicate": replicate})
    return json.dumps({"labels": labels})


def _judge_handler(req: ChatRequest) -> str:
    verdicts = []
    for _, n, body in _BLOCK.findall(_prompt(req)):
        crit = committee(*parse_window(body))
        verdicts.append(
            {"example": int(n), **{c: {"ok": ok, "reason": why} for c, (ok, why) in crit.items()}}
        )
    return json.dumps({"verdicts": verdicts})


@register(COMMITTEE)
def _committee_model(arg: str, config: Config) -> ScriptedModel:
    handlers: dict[str, Handler] = {"backward": _label_handler, "judge": _judge_handler}
    return ScriptedModel(handlers=handlers, name=COMMITTEE)


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
SPANS: list[tuple[float, float]] = []  # (start, end) of every backend call and env step/reset


class TimedModel:
    """`timed:SPEC`: the backend for SPEC, recording when each call is in flight."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            SPANS.append((start, time.perf_counter()))

    async def aclose(self) -> None:
        await self.inner.aclose()


@register("timed")
def _timed_model(arg: str, config: Config) -> TimedModel:
    return TimedModel(make_model(arg, config))


class DocsToyEnv(ToyEnv):
    """The toy store with 70 documentation sections (70 chunks -> 210 proposed tasks), timed."""

    def docs(self) -> list[Doc]:
        return [
            Doc(
                env="toy",
                source=f"toy-docs#{n}",
                title=f"Key family {n}",
                text=f"# Key family {n}\n\nKeys named `f{n}_NAME` hold settings of area {n}. Use "
                f"`set f{n}_NAME VALUE` to store one, `get f{n}_NAME` to read it, `delete f{n}_NAME` "
                "to remove it, `list` to see all keys, and `submit` when done.",
            )
            for n in range(70)
        ]

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        try:
            return super().reset(task, seed)
        finally:
            SPANS.append((start, time.perf_counter()))

    def step(self, action: str) -> StepResult:
        start = time.perf_counter()
        try:
            return super().step(action)
        finally:
            SPANS.append((start, time.perf_counter()))


@register_env("synthbench-toy", "the toy store with 70 doc sections, timed (bench/synth_cost.py)")
def _docs_toy(arg: str, config: Config) -> DocsToyEnv:
    return DocsToyEnv()


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
    cmd = [sys.executable, "-m", "lbi.testing.fake_openai", "--latency", str(LATENCY)]
    cmd += ["--array-items", "3", "--match-ids", "--react-actions", REACT_ACTIONS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"fake OpenAI server did not start: {line}")
    return proc, f"http://127.0.0.1:{line[1]}/v1"


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
        for stage, run in STAGE_RUNS.items():
            marks.append((stage, time.perf_counter()))
            await run(ctx)
            ctx.save_accounting()
        marks.append(("stats + close", time.perf_counter()))
        stats = synth.stats(ctx)
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


def machine_line() -> str:
    load = os.getloadavg()[0]
    return (
        f"`bench/synth_cost.py`, {datetime.date.today().isoformat()}: {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; 1-min load average "
        f"{load:.2f} at start. The machine is shared with other engineers' CPU-heavy jobs, so "
        "wall times are noisy; call and token counts are exact."
    )


async def main(args: argparse.Namespace) -> str:
    progress.console.quiet = not args.progress
    lines = [
        HEADING,
        "",
        machine_line(),
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


def write_section(section: str) -> None:
    """Replace only our section: from our heading to the next `## ` heading."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    start = text.find(HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + section + ("\n" + rest if rest else "")
    DOC.write_text(text)


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
    section = asyncio.run(main(args))
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"wrote {DOC}")
