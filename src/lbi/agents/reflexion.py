"""Reflexion (Shinn et al. 2023) as an agent policy: up to k tries at one task; after a try that
failed, the agent writes a reflection, and every later try sees its reflections in the prompt.

Each try is one episode of the one loop (`agents.react.drive`) with the ReAct `ModelPolicy`;
this module only decides whether to try again. What says a try failed is a setting
(`eval.reflexion.failed_by`): by default the agent's own verdict from what it observed (one
`self_eval` call), never the benchmark's; `reward` uses the environment's reward instead, for
environments where a real user would see one. The returned trajectory is the last try's, with
every try (its steps, verdicts, reflection and cost) in `attempts`; the evaluation's success is
the last try's, and the first try's is reported as pass@1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbi.agents.react import EpisodeSettings, ModelPolicy, drive
from lbi.agents.reflect import attempt, reflect, self_evaluate, spent
from lbi.config import ReflexionConfig
from lbi.envs.base import Environment
from lbi.types import Attempt, Task, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


async def run_reflexion(
    door: ModelDoor,
    env: Environment,
    task: Task,
    settings: EpisodeSettings,
    cfg: ReflexionConfig,
) -> Trajectory:
    space = env.action_space()
    reflections: list[str] = []
    attempts: list[Attempt] = []
    for k in range(cfg.trials):
        before = spent(door)
        policy = ModelPolicy(door, space, task, settings, reflections=reflections)
        traj = await drive(env, task, door.name, settings, policy)
        start = traj.steps[0].observation if traj.steps else ""
        last = k == cfg.trials - 1
        judged, why = None, ""
        if last:  # no try follows: its verdict would change nothing, so it is not asked
            failed = False
        elif cfg.failed_by == "self":
            judged, why = await self_evaluate(door, env.name, task, start, traj.steps, settings)
            failed = not judged
        else:
            failed = not traj.success
            why = f"the environment's reward was {traj.reward:g}"
        lesson = ""
        if failed:
            lesson = await reflect(
                door, env.name, task, start, traj.steps, reflections, why, settings
            )
        attempts.append(
            attempt(
                k, traj.steps, traj.success, before, door,
                judged=judged, judge_reason=why, reflection=lesson,
            )
        )  # fmt: skip
        if not failed:
            break
        reflections.append(lesson)
    traj.attempts = attempts
    return traj
