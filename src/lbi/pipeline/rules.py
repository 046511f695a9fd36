"""Rule filters on windows, applied before any model is asked (cheap and exact).

The paper's rule: drop windows with consecutive duplicate steps. We add: windows made only of
errors, empty windows, and windows too long to label or train on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol


class StepLike(Protocol):
    """What the rules read of a step (`lbi.types.Step` has it; so does the viewer's slim parse,
    which skips the stored requests a step also carries)."""

    @property
    def observation(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def next_observation(self) -> str: ...
    @property
    def error(self) -> bool: ...


def consecutive_duplicates(steps: Sequence[StepLike]) -> bool:
    return any(
        a.action == b.action and a.observation == b.observation
        for a, b in itertools.pairwise(steps)
    )


def only_errors(steps: Sequence[StepLike]) -> bool:
    return bool(steps) and all(s.error for s in steps)


def empty(steps: Sequence[StepLike]) -> bool:
    return not steps or all(not s.action.strip() for s in steps)


def too_long(steps: Sequence[StepLike], max_chars: int) -> bool:
    return (
        sum(len(s.observation) + len(s.action) + len(s.next_observation) for s in steps) > max_chars
    )


def rule_failures(steps: Sequence[StepLike], max_chars: int) -> list[str]:
    """Names of the rules this window breaks (empty list: it passes)."""
    out = []
    if empty(steps):
        out.append("empty")
    if consecutive_duplicates(steps):
        out.append("consecutive-duplicates")
    if only_errors(steps):
        out.append("only-errors")
    if too_long(steps, max_chars):
        out.append("too-long")
    return out
