"""The Ray executor: environments live on the cluster, the episode loop and the door stay here.

A pool of actors, one environment each, is created once per stage on an existing cluster
(`ray.init(address=...)`; no scheduler of our own), with the resources the environment declares,
and each environment is reset per episode. The job running on the driver gets a `RemoteEnv`
proxy: `reset`, `step` and `state_digest` are one actor call each (about 1 ms on loopback, see
docs/benchmarks.md). Model calls never leave the driver, so the door's cache, single flight,
concurrency limit, accounting and budget hold across the cluster unchanged, and only the
driver writes the run store.

Faults: a worker that dies (its process or its node) fails the episode's next env call with
`WorkerLost`; the actor is replaced and the episode runs again from its start on another
worker, its earlier model calls answered by the cache. An env call that runs past
`executor.step_timeout_s` kills the actor (it is replaced) and raises `EnvTimeout`, an
`EnvError`, so the stage records the episode as failed and goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import ray
from ray.exceptions import (
    ActorUnavailableError,
    GetTimeoutError,
    NodeDiedError,
    RayActorError,
    RayTaskError,
    WorkerCrashedError,
)

from lbi.envs.base import EnvError
from lbi.executor import EnvFactory, LocalExecutor

if TYPE_CHECKING:
    from lbi.config import ExecutorConfig
    from lbi.envs.base import ActionSpace, Environment
    from lbi.types import Task

T = TypeVar("T")
R = TypeVar("R")

START_TIMEOUT_S = 120.0  # a new worker process and its environment (a browser) may be slow to start
_LOST = (RayActorError, ActorUnavailableError, WorkerCrashedError, NodeDiedError)


class WorkerLost(RuntimeError):
    """The worker holding an episode's environment died: the episode runs again elsewhere."""


class EnvTimeout(EnvError):
    """An environment call ran past `executor.step_timeout_s`; its actor was replaced."""

    timeout = True  # stages test this attribute, so they need not import Ray


class EnvActor:
    """One environment on a worker, built once and reset per episode."""

    def __init__(self, make_env: EnvFactory) -> None:
        self.env = make_env()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.env.name,
            "space": self.env.action_space(),
            "max_concurrency": self.env.max_concurrency,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def call(self, method: str, args: tuple[Any, ...]) -> tuple[Any, float]:
        """The env method's answer and the seconds it took here (the rest of a call is the hop)."""
        start = time.perf_counter()
        out = getattr(self.env, method)(*args)
        return out, time.perf_counter() - start

    def close(self) -> None:
        self.env.close()


class RemoteEnv:
    """The driver's view of one environment actor; blocking calls, as the episode loop expects."""

    def __init__(self, actor: Any, info: dict[str, Any], timeout_s: float) -> None:
        self.actor = actor
        self.name: str = info["name"]
        self.max_concurrency: int = info["max_concurrency"]
        self.space: ActionSpace = info["space"]
        self.pid: int = info["pid"]
        self.node: str = info["node"]
        self.timeout_s = timeout_s
        self.dead = False
        self.hops: list[float] = []  # seconds per call spent outside env code (transport)

    def _call(self, method: str, *args: Any) -> Any:
        if self.dead:
            raise WorkerLost(f"the worker of {self.name} is gone")
        start = time.perf_counter()
        try:
            out, inside = ray.get(self.actor.call.remote(method, args), timeout=self.timeout_s)
        except GetTimeoutError:
            self.dead = True
            ray.kill(self.actor, no_restart=True)
            raise EnvTimeout(f"{method} took over {self.timeout_s:g}s; worker replaced") from None
        except _LOST as e:
            self.dead = True
            raise WorkerLost(f"worker of {self.name} died during {method}: {e}") from None
        except RayTaskError as e:  # the env's own exception, as it would be raised locally
            cause = e.cause if isinstance(e.cause, Exception) else None
            if cause is None:
                raise
            raise cause from None
        if len(self.hops) < 100_000:
            self.hops.append(time.perf_counter() - start - inside)
        return out

    def action_space(self) -> ActionSpace:
        return self.space

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        return cast(tuple[str, dict[str, Any]], self._call("reset", task, seed))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return cast(tuple[str, float, bool, bool, dict[str, Any]], self._call("step", action))

    def state_digest(self) -> str:
        return str(self._call("state_digest"))

    def docs(self) -> Any:
        return self._call("docs")

    def suites(self) -> list[str]:
        return list(self._call("suites"))

    def load_suite(self, name: str) -> Any:
        return self._call("load_suite", name)

    def sample_tasks(self) -> Any:
        return self._call("sample_tasks")

    def close(self) -> None:
        """Episodes do not close a pooled environment; the pool does, at the end of the stage."""


def connect(address: str) -> None:
    if not ray.is_initialized():
        ray.init(
            address=address or "auto",
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )


class ActorPool:
    """`size` environment actors; a dead one is replaced by a new one wherever Ray places it."""

    def __init__(self, make_env: EnvFactory, resources: dict[str, Any], timeout_s: float):
        self.cls: Any = ray.remote(EnvActor).options(max_restarts=0, **resources)
        self.make_env, self.timeout_s = make_env, timeout_s
        self.free: asyncio.Queue[RemoteEnv] = asyncio.Queue()
        self.live: set[RemoteEnv] = set()
        self.size = 0
        self.all: list[RemoteEnv] = []  # every proxy made, for the hop statistics
        self._spawning: set[asyncio.Task[None]] = set()
        self.started_s = 0.0  # seconds to start the pool's actors

    async def _spawn(self) -> None:
        actor: Any = self.cls.remote(self.make_env)
        try:
            info = await asyncio.wait_for(actor.describe.remote(), START_TIMEOUT_S)
        except (TimeoutError, *_LOST):  # no room left on the cluster: the pool shrinks
            ray.kill(actor, no_restart=True)
            self.size -= 1
            if self.size <= 0:
                raise WorkerLost("no worker could be started on the cluster") from None
            return
        proxy = RemoteEnv(actor, info, self.timeout_s)
        self.live.add(proxy)
        self.all.append(proxy)
        self.free.put_nowait(proxy)

    async def start(self, size: int) -> None:
        began = time.perf_counter()
        self.size = size
        await asyncio.gather(*(self._spawn() for _ in range(size)))
        self.started_s = time.perf_counter() - began

    async def acquire(self) -> RemoteEnv:
        if self.size <= 0:
            raise WorkerLost("no worker left on the cluster")
        return await self.free.get()

    def release(self, proxy: RemoteEnv) -> None:
        if not proxy.dead:
            self.free.put_nowait(proxy)
            return
        self.live.discard(proxy)
        ray.kill(proxy.actor, no_restart=True)
        task = asyncio.get_running_loop().create_task(self._spawn())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def close(self) -> None:
        for task in list(self._spawning):
            task.cancel()
        await asyncio.gather(*self._spawning, return_exceptions=True)
        closing = [p.actor.close.remote() for p in self.live]
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=30)
        for p in self.live:
            ray.kill(p.actor, no_restart=True)
        self.live.clear()


last_pool: ActorPool | None = None  # the latest stage's pool: its hop statistics, for benchmarks


class RayExecutor:
    """Episodes on an existing Ray cluster; model-only jobs on the driver (see `lbi.executor`)."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], concurrency: int
    ) -> AsyncIterator[tuple[T, R]]:
        return LocalExecutor().map(fn, items, concurrency)

    def pool_size(self, concurrency: int, resources: dict[str, Any]) -> int:
        if self.config.workers > 0:
            return self.config.workers
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        need = float(resources.get("num_cpus", 1) or 0)
        fits = int(cpus // need) if need > 0 else concurrency
        return max(1, min(concurrency, fits))

    async def episodes(
        self,
        fn: Callable[[T, Environment], Awaitable[R]],
        items: Iterable[T],
        concurrency: int,
        make_env: EnvFactory,
        resources: dict[str, Any] | None = None,
    ) -> AsyncIterator[tuple[T, R]]:
        pending = list(items)
        if not pending:
            return
        connect(self.config.address)
        resources = resources or {"num_cpus": 1}
        global last_pool
        pool = last_pool = ActorPool(make_env, resources, self.config.step_timeout_s)
        retries = max(0, self.config.retries)

        async def one(item: T) -> R:
            for attempt in range(retries + 1):
                proxy = await pool.acquire()
                try:
                    return await fn(item, cast("Environment", proxy))
                except WorkerLost:
                    if attempt >= retries:
                        raise
                finally:
                    pool.release(proxy)
            raise AssertionError("unreachable")

        try:
            await pool.start(self.pool_size(concurrency, resources))
            async for got in LocalExecutor().map(one, pending, pool.size):
                yield got
        finally:
            await pool.close()
