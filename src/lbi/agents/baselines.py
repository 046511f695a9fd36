"""The inference-time baselines of the paper's Table 2, by variant name: Reflexion and LATS.

They spend model calls at every task instead of using synthesized data, so they are variants
of their own (`lbi eval --variants reflexion,lats`, arms of `lbi experiment paper`), never part
of "every variant the run supports". Both run without retrieved examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbi.agents.lats import run_lats
from lbi.agents.react import EpisodeSettings
from lbi.agents.reflexion import run_reflexion
from lbi.agents.replay import require_replay
from lbi.config import EvalConfig
from lbi.envs.base import Environment
from lbi.types import Task, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor

BASELINES = ("reflexion", "lats")


def check_baselines(env: Environment, variants: list[str]) -> None:
    """Refuse in one line, before any call, what the environment cannot run (LATS: replay)."""
    if "lats" in variants:
        require_replay(env)


def calls_at_most(variant: str, cfg: EvalConfig, max_steps: int) -> int:
    """Model calls one episode may make: every try to the step limit, plus its verdict and
    reflection (Reflexion); the call budget (LATS)."""
    if variant == "reflexion":
        return cfg.reflexion.trials * (max_steps + 2)
    return cfg.lats.max_calls


async def run_baseline(
    variant: str,
    door: ModelDoor,
    env: Environment,
    task: Task,
    settings: EpisodeSettings,
    cfg: EvalConfig,
) -> Trajectory:
    if variant == "reflexion":
        return await run_reflexion(door, env, task, settings, cfg.reflexion)
    if variant == "lats":
        return await run_lats(door, env, task, settings, cfg.lats)
    raise ValueError(f"not a baseline: {variant}")
