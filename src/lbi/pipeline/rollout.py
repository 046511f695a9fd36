"""Stage 2 — rollouts: the agent attempts each task in the live environment.

Every step is stored as it happens; the finished trajectory is stored in one transaction. A
killed run restarts the unfinished episodes; their model calls come from the cache, so nothing
is paid twice and the replayed episode is the same one. An episode that fails (a model call
that failed after its retries, an environment that raised) is stored as a `Failure` instead of
a trajectory, and the next run retries it (`lbi.pipeline.failures`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lbi.agents.env_errors import EnvCallFailed
from lbi.agents.react import EpisodeSettings, StepRetriever, new_trajectory, run_episode
from lbi.envs.base import EnvError, Environment
from lbi.executor import env_resources, make_executor
from lbi.models.base import ModelError
from lbi.pipeline.failures import StageFailures
from lbi.progress import stage_progress
from lbi.types import Task, Trajectory

if TYPE_CHECKING:
    from lbi.run import RunContext


async def rollout_tasks(
    ctx: RunContext,
    tasks: list[Task],
    make_env: Callable[[], Environment],
    *,
    samples: int,
    base: EpisodeSettings,
    retriever: StepRetriever | None = None,
    label: str = "rollouts",
    capacity: int | None = None,
) -> list[Trajectory]:
    """Run `samples` episodes per task (skipping stored ones); return all trajectories in task order."""
    door = ctx.door()
    jobs = [(task, s) for task in tasks for s in range(samples)]

    def settings_for(s: int) -> EpisodeSettings:
        seed = base.seed + s
        return EpisodeSettings(**{**base.__dict__, "sample": s, "seed": seed})

    def tid(task: Task, s: int) -> str:
        return new_trajectory(task, door.name, settings_for(s)).id

    have = ctx.store.ids(Trajectory)
    todo = [j for j in jobs if tid(*j) not in have]
    failures = StageFailures(ctx, "rollout", len(jobs), "episodes")

    async def one(job: tuple[Task, int], env: Environment) -> Trajectory | None:
        task, s = job
        try:
            return await run_episode(door, env, task, settings_for(s), retriever)
        except EnvCallFailed as e:
            failures.fail(tid(task, s), e, f"task {task.id} sample {s}")
            return None
        except EnvError as e:
            # A task the environment cannot start (e.g. a synthesized task with no start state)
            # is recorded as such and skipped, instead of stopping the whole run; so is an
            # episode whose environment stopped answering on a cluster worker.
            why = "env timeout" if getattr(e, "timeout", False) else "reset failed"
            return new_trajectory(task, door.name, settings_for(s), f"{why}: {e}")
        except ModelError as e:
            failures.fail(tid(task, s), e, f"task {task.id} sample {s}")  # or re-raised
            return None

    resources = None
    if capacity is None:
        probe = make_env()
        capacity, resources = probe.max_concurrency, env_resources(probe)
        probe.close()
    concurrency = max(1, min(capacity, ctx.config.door.concurrency))
    executor = make_executor(ctx.config.executor)
    with stage_progress(label, len(jobs), ctx.accountant, done=len(jobs) - len(todo)) as advance:
        async for (task, s), traj in executor.episodes(one, todo, concurrency, make_env, resources):
            failed, drop = failures.outcome(tid(task, s))
            ctx.commit([traj] if traj is not None else failed, replace=True, drop=drop)
            advance(failed=len(failed))
            failures.check()
    failures.report()
    by_id = {t.id: t for t in ctx.store.all(Trajectory)}
    return [by_id[tid(*j)] for j in jobs if tid(*j) in by_id]
