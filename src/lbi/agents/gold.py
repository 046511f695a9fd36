"""Gold as a policy: an environment's reference solution, acting through the same loop.

Where the environment has an oracle (`env.oracle(task)`: MiniWoB's scripted solutions read the
observation as an agent would), the gold policy asks it at every step; otherwise it replays the
task's recorded reference actions (gold SQL then `submit`, the toy's reference, tau2's gold
actions). Either way the episode runs through `drive`, so gold trajectories are stored, rendered,
retrieved and trained on exactly like the agent's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lbi.agents.react import Decision, FixedPolicy, StepContext
from lbi.types import Task

GOLD_MODEL = "gold"
Oracle = Callable[[str, list[str]], str]


def oracle_for(env: Any, task: Task) -> Oracle | None:
    make = getattr(env, "oracle", None)
    return make(task) if callable(make) else None


def has_gold(env: Any, task: Task) -> bool:
    return bool(task.reference) or oracle_for(env, task) is not None


class GoldPolicy:
    """Satisfies `lbi.agents.react.Policy`."""

    def __init__(self, env: Any, task: Task) -> None:
        self.oracle = oracle_for(env, task)
        self.replay = FixedPolicy(task.reference)

    async def decide(self, ctx: StepContext) -> list[Decision] | None:
        if self.oracle is None:
            return await self.replay.decide(ctx)
        action = self.oracle(ctx.observation, [s.action for s in ctx.history])
        return [Decision(action=action, reason="The reference solution's next step.")]
