"""One executor abstraction for episodes and model-only jobs.

Stages hand it async jobs and a concurrency bound; it yields results as they finish, and the
stage (on the driver) stores them: only the driver writes the run store. Two kinds of job:

- `map`: jobs whose only work is model calls (task proposals, backward labels, judges). They
  run on the driver's event loop in every executor, because their work happens behind the
  model door (the model server), which stays on the driver with its cache and budget.
- `episodes`: jobs that need an environment. The local executor builds one per episode in this
  process; the Ray executor (`lbi.executor.ray_pool`) keeps a pool of environment actors on
  the cluster and hands the job a proxy whose reset/step run there.

Which one runs comes from config (`executor.kind`), through `make_executor`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lbi.envs.calls import env_close

if TYPE_CHECKING:
    from lbi.config import ExecutorConfig
    from lbi.envs.base import Environment

T = TypeVar("T")
R = TypeVar("R")

EnvFactory = Callable[[], "Environment"]


class Executor(Protocol):
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], concurrency: int
    ) -> AsyncIterator[tuple[T, R]]: ...

    def episodes(
        self,
        fn: Callable[[T, Environment], Awaitable[R]],
        items: Iterable[T],
        concurrency: int,
        make_env: EnvFactory,
        resources: dict[str, Any] | None = None,
    ) -> AsyncIterator[tuple[T, R]]: ...


def env_resources(env: Any) -> dict[str, float]:
    """What one instance of an environment needs on a cluster (default: one CPU)."""
    declared = getattr(env, "resources", None)
    return dict(declared) if isinstance(declared, dict) and declared else {"num_cpus": 1}


class LocalExecutor:
    """Runs jobs on the current event loop, at most `concurrency` at once, yielding as they finish.

    A failing job cancels the others and re-raises, so a budget stop or a fatal model error
    stops the stage cleanly; work already yielded has been stored by the caller.
    """

    async def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], concurrency: int
    ) -> AsyncIterator[tuple[T, R]]:
        pending = list(items)
        if not pending:
            return
        queue: asyncio.Queue[tuple[T, R] | BaseException] = asyncio.Queue()
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(item: T) -> None:
            async with sem:
                try:
                    queue.put_nowait((item, await fn(item)))
                except BaseException as e:  # reported to the consumer, which stops everything
                    queue.put_nowait(e)

        tasks = [asyncio.create_task(one(item)) for item in pending]
        try:
            for _ in range(len(tasks)):
                got = await queue.get()
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def episodes(
        self,
        fn: Callable[[T, Environment], Awaitable[R]],
        items: Iterable[T],
        concurrency: int,
        make_env: EnvFactory,
        resources: dict[str, Any] | None = None,
    ) -> AsyncIterator[tuple[T, R]]:
        """A fresh environment per episode, in this process, closed after it."""

        async def one(item: T) -> R:
            env = await asyncio.to_thread(make_env)
            try:
                return await fn(item, env)
            finally:
                await env_close(env)

        async for got in self.map(one, items, concurrency):
            yield got


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor the config names: `local` (this process) or `ray` (an existing cluster)."""
    if config.kind == "ray":
        from lbi.executor.ray_pool import RayExecutor

        return RayExecutor(config)
    return LocalExecutor()
