"""Gold as data and as a labeller: reference-solution trajectories and their true instructions.

`gold_rollouts` drives the environment's reference solution (`lbi.agents.gold.GoldPolicy`)
over training tasks and seeds; `true_label` is the instruction the trajectory really carried out
(MiniWoB's utterance, which the observation states as its `Goal:` line; else the task's own
instruction: the SQL question, the toy request), which can stand in for backward construction;
`gold_examples` turns trajectories into whole-trajectory examples under that label.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from typing import Any

from lbi.agents.gold import GOLD_MODEL, GoldPolicy, has_gold
from lbi.agents.react import EpisodeSettings, drive
from lbi.envs.calls import env_close
from lbi.types import Example, Task, Trajectory


def true_label(traj: Trajectory) -> str:
    first = traj.steps[0].observation if traj.steps else ""
    line = first.split("\n", 1)[0]
    return line.removeprefix("Goal: ").strip() if line.startswith("Goal: ") else traj.instruction


def gold_examples(
    trajs: Iterable[Trajectory],
    label: Callable[[Trajectory], str] = true_label,
    only_success: bool = True,
) -> list[Example]:
    """One example per (successful) trajectory: all its steps, labelled with `label(traj)`."""
    out = []
    for t in trajs:
        if not t.steps or (only_success and not t.success):
            continue
        out.append(
            Example(
                env=t.env,
                instruction=label(t),
                style="task",
                trajectory_id=t.id,
                task_id=t.task_id,
                i=0,
                j=len(t.steps) - 1,
                policy="gold",
                steps=t.steps,
            )
        )
    return out


async def gold_rollouts(
    make_env: Callable[[], Any],
    tasks: list[Task],
    seeds: list[int],
    max_steps: int = 30,
    done: Collection[tuple[str, int]] = (),
) -> list[Trajectory]:
    """The reference solution on every (task, seed) that has one, one episode at a time; the
    (task id, seed) pairs in `done` (already stored) are not driven again."""
    out = []
    for task in tasks:
        for seed in seeds:
            if (task.id, seed) in done:
                continue
            env = await asyncio.to_thread(make_env)
            try:
                if not has_gold(env, task):
                    continue
                settings = EpisodeSettings(
                    max_steps=max_steps, seed=seed, sample=seed, variant="gold", stage="gold"
                )
                out.append(await drive(env, task, GOLD_MODEL, settings, GoldPolicy(env, task)))
            finally:
                await env_close(env)
    return out
