"""Restoring a state by replay: reset, then the actions that led to it, checked by digest.

LATS (lbi.agents.lats) revisits tree nodes this way. Every replay is an episode of the one loop
(`agents.react.drive`) whose policy first plays the recorded decisions, then hands over to
another policy (or ends). After it, each replayed step's state digest must equal the one
recorded the first time; an environment where it does not cannot be searched, and says so in
one line (`CannotReplay`).
"""

from __future__ import annotations

from collections.abc import Sequence

from lbi.agents.react import Decision, Policy, StepContext
from lbi.envs.base import EnvError, cannot_replay
from lbi.types import Step, Trajectory


class CannotReplay(EnvError):
    """The environment cannot restore a state by reset and replay (one line)."""


def require_replay(env: object, what: str = "lats") -> None:
    """Refuse, before any model call, an environment that declares it cannot replay."""
    why = cannot_replay(env)
    if why is not None:
        name = getattr(env, "name", type(env).__name__)
        raise CannotReplay(f"{what} restores states by reset + replay; {name} cannot: {why}")


class ReplayPolicy:
    """The recorded decisions in order, then `then` (None: the episode ends)."""

    def __init__(self, prefix: Sequence[Decision], then: Policy | None = None) -> None:
        self.prefix, self.then = list(prefix), then

    async def decide(self, ctx: StepContext) -> list[Decision] | None:
        if ctx.step < len(self.prefix):
            return [self.prefix[ctx.step]]
        return None if self.then is None else await self.then.decide(ctx)


def check_replay(env: str, traj: Trajectory, recorded: Sequence[Step]) -> None:
    """Each replayed step reached the state it reached when it was first taken."""
    for n, want in enumerate(recorded):
        got = traj.steps[n] if n < len(traj.steps) else None
        if got is None or got.action != want.action or got.digest != want.digest:
            seen = "the episode ended before it" if got is None else f"digest {got.digest}"
            raise CannotReplay(
                f"replaying step {n + 1} ({want.action!r}) on {env} did not reproduce its state "
                f"(digest {want.digest}, now {seen}): this environment cannot be searched by replay"
            )
