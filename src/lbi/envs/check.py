"""`lbi envs check`: validates any environment against the contract.

Like Gymnasium's `check_env`: reset is reproducible, a bad action comes back as an error
observation (never an exception), reference solutions score (this tests the success checker
itself), and close frees every resource it took.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from lbi.envs.base import Environment
from lbi.types import Doc, Task

BAD_ACTIONS = ["", "   ", "\x00garbage\x00 ((((", "this is not an action at all; DROP everything"]


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    env: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.results.append(CheckResult(name, ok, detail))


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
    try:
        _check_docs(env, report)
        _check_action_space(env, report)
        tasks = env.sample_tasks()
        report.add("sample tasks", bool(tasks), f"{len(tasks)} tasks")
        if tasks:
            _check_reset(env, tasks[0], report)
            _check_bad_actions(env, tasks[0], report)
            _check_references(env, tasks, report)
    except Exception as e:  # a check that crashes is a failed check, with the reason
        report.add("no exceptions", False, f"{type(e).__name__}: {e}")
    finally:
        env.close()
    if report.ok and tasks:
        _check_close(make, tasks[0], cycles, report)
    return report


def _check_docs(env: Environment, report: CheckReport) -> None:
    docs = env.docs()
    ok = bool(docs) and all(isinstance(d, Doc) and d.text.strip() for d in docs)
    report.add("docs", ok, f"{len(docs)} documents, {sum(len(d.text) for d in docs)} chars")


def _check_action_space(env: Environment, report: CheckReport) -> None:
    space = env.action_space()
    report.add("action space described", bool(space.description.strip()), _gist(space.description))


def _check_reset(env: Environment, task: Task, report: CheckReport) -> None:
    obs1, _ = env.reset(task, seed=0)
    d1 = env.state_digest()
    if task.reference:
        env.step(task.reference[0])
    obs2, _ = env.reset(task, seed=0)
    d2 = env.state_digest()
    report.add("reset reproducible", obs1 == obs2 and d1 == d2, f"digest {d1}")


def _check_bad_actions(env: Environment, task: Task, report: CheckReport) -> None:
    env.reset(task, seed=0)
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
        env.reset(task, seed=0)
        if task.reference:
            env.step(task.reference[0])
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
