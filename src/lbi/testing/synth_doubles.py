"""Test doubles for synthesis: seeded long trajectories, a rule-based labeller + committee, timing.

`bench/synth_cost.py` measures what backward construction and the filter cost; its smoke test
checks the same machinery. Both need trajectories with known flaws (errors with and without
recovery, repeated reads, undo, overwrite) and a labeller/committee whose verdicts depend on
the content of what it is shown, never on the batch it came in, so that counts are exact and
reproducible without an LLM. Importing this module registers:

- model `synthbench`: the labeller (backward prompts) and committee (judge prompts), read from
  the rendered prompts by rule (see COMMITTEE_CHECKS);
- model `timed:SPEC`: SPEC's backend, recording in SPANS when each call is in flight;
- env `synthbench-toy`: the toy store with 70 doc sections, recording its resets/steps in SPANS.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lbi.envs.base import StepResult, register_env
from lbi.envs.toy import ToyEnv
from lbi.models.base import Capabilities, ChatRequest, ChatResponse, Model
from lbi.models.registry import make_model, register
from lbi.models.scripted import Handler, ScriptedModel
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

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
# Items fenced as <example-BOUNDARY id="N"> ... </example-BOUNDARY> (prompts.fence).
_BLOCK = re.compile(r'<((?:excerpt|example)(?:-[0-9a-f]+)?) id="(\d+)">\n(.*?)\n</\1>', re.S)
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
    """A step succeeded unless the toy store answered with an error."""
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
    """The wasted steps of a window: repeated reads, undo and overwrite (see `reasonable`)."""
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
    """Answer a backward prompt: one label per numbered excerpt, named by `describe`."""
    labels = []
    for _, n, body in _BLOCK.findall(_prompt(req)):
        task, replicate = describe(parse_window(body)[1])
        labels.append({"window": int(n), "task": task, "replicate": replicate})
    return json.dumps({"labels": labels})


def _judge_handler(req: ChatRequest) -> str:
    """Answer a judge prompt: one verdict per numbered example, decided by `committee`."""
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


# -------------------------------------------------------------- timing ----------------

SPANS: list[tuple[float, float]] = []  # (start, end) of every backend call and env step/reset


@contextlib.contextmanager
def span() -> Iterator[None]:
    """Record in SPANS the interval the block is in flight, however it ends."""
    start = time.perf_counter()
    try:
        yield
    finally:
        SPANS.append((start, time.perf_counter()))


class TimedModel:
    """`timed:SPEC`: the backend for SPEC, recording when each call is in flight."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        with span():
            return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@register("timed")
def _timed_model(arg: str, config: Config) -> TimedModel:
    return TimedModel(make_model(arg, config))


class DocsToyEnv(ToyEnv):
    """The toy store with 70 documentation sections (70 chunks -> 210 proposed tasks), timed;
    `synthbench-toy:N` has N sections (bench/scale.py sizes runs by it)."""

    def __init__(self, sections: int = 70) -> None:
        super().__init__()
        self.sections = sections

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
            for n in range(self.sections)
        ]

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        with span():
            return super().reset(task, seed)

    def step(self, action: str) -> StepResult:
        with span():
            return super().step(action)


@register_env(
    "synthbench-toy", "the toy store with 70 (or `:N`) doc sections, timed (bench/synth_cost.py)"
)
def _docs_toy(arg: str, config: Config) -> DocsToyEnv:
    return DocsToyEnv(int(arg) if arg else 70)
