"""`lbi envs check`: validates any environment against the contract.

Like Gymnasium's `check_env`: reset is reproducible, a bad action comes back as an error
observation (never an exception), reference solutions score (this tests the success checker
itself), and close frees every resource it took. Each check runs even when another failed or
raised; a check that cannot run says so and why (`skipped`). When two resets differ, the check
shows the first lines that differ: of the observations, and of what `state_digest` hashes where
the environment exposes it (an optional `digest_input()`).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from lbi.envs.base import Environment, one_line
from lbi.types import Doc, Task

BAD_ACTIONS = ["", "   ", "\x00garbage\x00 ((((", "this is not an action at all; DROP everything"]
DIFF_LINES = 6  # differing lines shown per comparison


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False
    lines: list[str] = field(default_factory=list)  # what it saw, shown under it (a diff)


@dataclass
class CheckReport:
    env: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def add(self, name: str, ok: bool, detail: str = "", lines: list[str] | None = None) -> None:
        self.results.append(CheckResult(name, ok, detail, lines=list(lines or [])))

    def skip(self, name: str, why: str) -> None:
        self.results.append(CheckResult(name, True, why, skipped=True))


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _resources() -> tuple[int, int]:
    return _open_fds(), threading.active_count()


def check_env(make: Callable[[], Environment], cycles: int = 5) -> CheckReport:
    """Run every check on fresh instances from `make`; never raises for a failed check."""
    env = make()
    report = CheckReport(env=getattr(env, "name", type(env).__name__))
    tasks: list[Task] = []
    try:
        _guarded(report, "docs", _check_docs, env, report)
        _guarded(report, "action space described", _check_action_space, env, report)
        tasks = env.sample_tasks()
        report.add("sample tasks", bool(tasks), f"{len(tasks)} tasks")
    except Exception as e:
        report.add("sample tasks", False, f"raised {one_line(e)}")
    try:
        for name, check in (
            ("reset reproducible", _check_reset),
            ("bad action -> error observation", _check_bad_actions),
            ("reference solutions score", _check_references),
        ):
            if tasks:
                _guarded(report, name, check, env, tasks, report)
            else:
                report.skip(name, "there is no sample task to run it on")
    finally:
        _guarded(report, "close", env.close)
    if tasks:
        _guarded(report, "close frees resources", _check_close, make, tasks[0], cycles, report)
    else:
        report.skip("close frees resources", "there is no sample task to open and use")
    return report


def _guarded(report: CheckReport, name: str, check: Callable[..., None], *args: object) -> None:
    """A check that raises is a failed check, with the reason, and the next one still runs."""
    try:
        check(*args)
    except Exception as e:
        report.add(name, False, f"raised {one_line(e)}")


def _check_docs(env: Environment, report: CheckReport) -> None:
    docs = env.docs()
    ok = bool(docs) and all(isinstance(d, Doc) and d.text.strip() for d in docs)
    report.add("docs", ok, f"{len(docs)} documents, {sum(len(d.text) for d in docs)} chars")


def _check_action_space(env: Environment, report: CheckReport) -> None:
    space = env.action_space()
    report.add("action space described", bool(space.description.strip()), _gist(space.description))


def _digest_input(env: Environment) -> str | None:
    read = getattr(env, "digest_input", None)
    value = read() if callable(read) else None
    return None if value is None else str(value)


def first_differences(what: str, a: str, b: str, n: int = DIFF_LINES) -> list[str]:
    """The first `n` lines where `a` (the first reset's) and `b` (the second's) differ."""
    pairs = list(itertools.zip_longest(a.splitlines(), b.splitlines()))
    differ = [(i, x, y) for i, (x, y) in enumerate(pairs, 1) if x != y]
    shown = [
        f"{what} line {i}: {'(none)' if x is None else repr(x)} -> "
        f"{'(none)' if y is None else repr(y)}"
        for i, x, y in differ[:n]
    ]
    more = len(differ) - n
    return shown + ([f"… and {more} more differing lines"] if more > 0 else [])


def _check_reset(env: Environment, tasks: list[Task], report: CheckReport) -> None:
    task = tasks[0]
    obs1, _ = env.reset(task, seed=0)
    d1, in1 = env.state_digest(), _digest_input(env)
    if task.reference:
        env.step(task.reference[0])
    obs2, _ = env.reset(task, seed=0)
    d2, in2 = env.state_digest(), _digest_input(env)
    lines = first_differences("observation", obs1, obs2) if obs1 != obs2 else []
    if d1 != d2 and in1 is not None and in2 is not None and (in1, in2) != (obs1, obs2):
        lines += first_differences("state_digest input", in1, in2)
    ok = obs1 == obs2 and d1 == d2
    detail = f"digest {d1}" if ok else f"two resets with seed 0 differ (digest {d1}, then {d2}):"
    report.add("reset reproducible", ok, detail, lines)


def _check_bad_actions(env: Environment, tasks: list[Task], report: CheckReport) -> None:
    env.reset(tasks[0], seed=0)
    failures = []
    for bad in BAD_ACTIONS:
        try:
            obs, _, terminated, _, info = env.step(bad)
        except Exception as e:
            failures.append(f"{bad!r} raised {type(e).__name__}")
            continue
        if not isinstance(obs, str) or terminated:
            failures.append(f"{bad!r} did not come back as an observation")
        elif not bad.strip() and not info.get("error"):
            # Any text may be a valid action somewhere, but an empty one never is.
            failures.append(f"{bad!r} was not flagged as an error")
    report.add("bad action -> error observation", not failures, "; ".join(failures))


def _check_references(env: Environment, tasks: list[Task], report: CheckReport) -> None:
    with_ref = [t for t in tasks if t.reference and t.gold]
    if not with_ref:
        report.skip(
            "reference solutions score",
            "no task has a reference and a check (a suite file's `reference`)",
        )
        return
    solved = 0
    for t in with_ref:
        env.reset(t, seed=0)
        reward = 0.0
        for action in t.reference:
            _, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        solved += reward >= 1.0
    report.add("reference solutions score", solved == len(with_ref), f"{solved}/{len(with_ref)}")


def _check_close(
    make: Callable[[], Environment], task: Task, cycles: int, report: CheckReport
) -> None:
    """Open/use/close repeatedly: descriptors and threads must not grow."""

    def cycle() -> None:
        env = make()
        try:
            env.reset(task, seed=0)
            if task.reference:
                env.step(task.reference[0])
        finally:
            env.close()

    cycle()  # warm lazy imports and caches before measuring
    before = _resources()
    for _ in range(cycles):
        cycle()
    after = _resources()
    ok = after[0] <= before[0] and after[1] <= before[1]
    report.add(
        "close frees resources", ok, f"fds {before[0]}->{after[0]}, threads {before[1]}->{after[1]}"
    )


def _gist(text: str, width: int = 80) -> str:
    """The text's start on one line, cut at a word boundary (with an ellipsis) when it is long."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:.") + " …"
