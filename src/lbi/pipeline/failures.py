"""Units of work that fail, kept as records: what failed, why, how many, and when to stop.

A model call that failed after its retries, a request the endpoint refused (a context
overflow), an answer with no usable JSON, or an environment that raised mid-episode fails the
one unit of work it belongs to: an episode, a doc chunk, a trajectory's labels, an example's
verdict. The stage stores a `Failure` in place of the unit's output and goes on. The next run
of the same command finds no output for the unit and does it again (content-hash ids, as for
any unfinished work); a unit that then succeeds drops its failure in the same transaction.

What still stops the run as before: an endpoint that refuses every call (`EndpointError`: a
rejected key, an unknown model, an exhausted quota), a budget stop, Ctrl-C, and a bug in lbi
(any other exception). A stage with more failed units than `run.max_failures` allows stops too
(`TooManyFailures`, exit 4): most of its work failing says the setup is wrong, and going on
would only spend more on it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from rich.markup import escape

from lbi.agents.env_errors import EnvCallFailed
from lbi.models.base import (
    ContextOverflow,
    EndpointError,
    ModelError,
    RetriesExhausted,
    StructuredOutputError,
)
from lbi.progress import console
from lbi.types import Failure

if TYPE_CHECKING:
    from lbi.run import RunContext

RERUN = "rerun the same command to retry them"


class TooManyFailures(RuntimeError):
    """More units of a stage failed than `run.max_failures` allows; the message lists why."""


def failure_kind(error: BaseException) -> str | None:
    """What kind of unit failure `error` is, or None when it must stop the run instead."""
    if isinstance(error, EndpointError):
        return None
    if isinstance(error, ContextOverflow):
        return "context overflow"
    if isinstance(error, RetriesExhausted):
        return "retries exhausted"
    if isinstance(error, StructuredOutputError):
        return "no valid JSON"
    if isinstance(error, ModelError):
        return "model error"
    if isinstance(error, EnvCallFailed):
        return "env error"
    return None


def failure_id(stage: str, unit: str) -> tuple[str, str]:
    """The (kind, id) of the failure a unit of `stage` would leave: what its success drops."""
    return Failure.kind, Failure(stage=stage, unit=unit, error="", message="").id


def allowed(max_failures: float, total: int) -> float:
    """How many failed units a stage of `total` may have: a share below 1, a count from 1."""
    return max_failures * total if max_failures < 1 else max_failures


def grouped(failures: list[Failure]) -> list[tuple[int, str]]:
    """(count, "kind: message") per kind of failure, most frequent first. Messages that differ
    only in their numbers (token counts, ports) are one group, shown by its first message."""
    first: dict[tuple[str, str], str] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for f in failures:
        key = (f.error, re.sub(r"\d+", "N", f.message))
        first.setdefault(key, f"{f.error}: {f.message}")
        counts[key] += 1
    return [(n, first[key]) for key, n in counts.most_common()]


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class StageFailures:
    """The failures of one stage in this session: recorded as units fail, committed with them,
    counted against `run.max_failures`, and summed up when the stage ends."""

    def __init__(self, ctx: RunContext, stage: str, total: int, noun: str) -> None:
        self.stage, self.total, self.noun = stage, total, noun
        self.max_failures = ctx.config.run.max_failures
        self.limit = allowed(self.max_failures, total)
        self.failed: dict[str, Failure] = {}

    def fail(self, unit: str, error: BaseException, label: str = "") -> Failure:
        """Record `unit` as failed with `error`; an error that is no unit failure is re-raised.
        A unit that fails twice (two label batches of one trajectory) keeps its first reason."""
        kind = failure_kind(error)
        if kind is None:
            raise error
        if unit not in self.failed:
            message = _one_line(str(error) or type(error).__name__)
            self.failed[unit] = Failure(
                stage=self.stage, unit=unit, label=label, error=kind, message=message
            )
        return self.failed[unit]

    def outcome(self, unit: str) -> tuple[list[Failure], list[tuple[str, str]]]:
        """What to commit with a finished unit: its failure, or the drop of an earlier one."""
        failure = self.failed.get(unit)
        return ([failure], []) if failure is not None else ([], [failure_id(self.stage, unit)])

    def check(self) -> None:
        """Stop the stage once more units failed than `run.max_failures` allows."""
        if len(self.failed) > self.limit:
            raise TooManyFailures(
                f"{self.summary()}\nThat is more than run.max_failures={self.max_failures:g} "
                f"allows ({int(self.limit)}), so the stage stopped. See why, fix it (or raise "
                f"run.max_failures) and {RERUN}: finished work is kept."
            )

    def summary(self) -> str:
        lines = [f"{self.stage}: {len(self.failed)} of {self.total} {self.noun} failed"]
        lines += [f"  {n} × {text}" for n, text in grouped(list(self.failed.values()))[:8]]
        return "\n".join(lines)

    def report(self) -> None:
        """One line per kind of failure under the stage's progress; nothing when none failed
        (past `run.max_failures`, `TooManyFailures` says it instead)."""
        self.check()
        if self.failed:
            console.print(
                f"[yellow]{escape(self.summary())}[/]\n  stored as failures; {RERUN}",
                highlight=False,
                soft_wrap=True,
            )
