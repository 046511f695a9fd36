"""An episode cancelled mid-call does not close its environment under the running call.

Ctrl-C during an eval with the Qwen 0.5B died with SIGSEGV (1 in 8 runs): the cancelled
episode's `finally` closed the SQL env's SQLite connection from one thread while `state_digest`
was still reading it in another. Every call into one environment now holds its lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from lbi.envs.calls import env_call, env_lock
from lbi.executor import LocalExecutor


class SlowDigestEnv:
    """Records whether `close` ever ran while another call was inside the environment."""

    name = "slow"

    def __init__(self) -> None:
        self.inside = 0
        self.closed_during_a_call = False
        self.closed = threading.Event()
        self.entered = threading.Event()

    def state_digest(self) -> str:
        self.inside += 1
        self.entered.set()
        time.sleep(0.5)
        self.inside -= 1
        return "digest"

    def close(self) -> None:
        self.closed_during_a_call = self.inside > 0
        self.closed.set()


def test_close_after_a_cancelled_call_waits_for_that_call() -> None:
    env = SlowDigestEnv()

    async def episode(_: int, e: Any) -> str:
        return str(await env_call(e, e.state_digest))

    async def go() -> None:
        async def consume() -> None:
            async for _ in LocalExecutor().episodes(episode, [0], 1, lambda: env):
                pass

        task = asyncio.create_task(consume())
        await asyncio.to_thread(env.entered.wait, 10)
        task.cancel()  # what Ctrl-C does to every episode in flight
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(env.closed.wait, 10)

    asyncio.run(go())
    assert env.closed.is_set()
    assert not env.closed_during_a_call


def test_each_environment_has_its_own_lock() -> None:
    a, b = SlowDigestEnv(), SlowDigestEnv()
    assert env_lock(a) is env_lock(a)
    assert env_lock(a) is not env_lock(b)


def test_a_real_sql_env_survives_cancel_then_close(tmp_path: Path) -> None:
    """The case that crashed: the SQL env's digest in flight, then its close."""
    from lbi.config import Config
    from lbi.envs.base import make_env
    from lbi.types import Task

    env = make_env("sql:pets_1", Config.model_validate({"run_root": str(tmp_path)}))
    env.reset(Task(env=env.name, instruction="x"), 0)

    async def go() -> None:
        calls = [asyncio.create_task(env_call(env, env.state_digest)) for _ in range(20)]
        await asyncio.sleep(0)
        for call in calls:
            call.cancel()
        await env_call(env, env.close)
        await asyncio.gather(*calls, return_exceptions=True)

    asyncio.run(go())


def test_closing_an_abandoned_episode_interrupts_its_running_statement(tmp_path: Path) -> None:
    """With the lock, close waited for the statement in flight, up to the SQL deadline: a Ctrl-C
    exit took 10.3 s under load (1 of 50). `env_close` interrupts it (SQLite's interrupt)."""
    from lbi.config import Config
    from lbi.envs.base import make_env
    from lbi.envs.calls import env_close
    from lbi.types import Task

    config = Config.model_validate(
        {"run_root": str(tmp_path), "env_options": {"sql": {"timeout_s": 120}}}
    )
    env = make_env("sql:pets_1", config)
    env.reset(Task(env=env.name, instruction="x"), 0)
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"

    async def go() -> tuple[Any, float]:
        step = asyncio.create_task(env_call(env, env.step, forever))
        await asyncio.sleep(1.0)  # the statement is running
        started = time.monotonic()
        await env_close(env)
        return await step, time.monotonic() - started

    (obs, *_), took = asyncio.run(go())
    assert obs.startswith("Error:") and "interrupt" in obs.lower(), obs
    assert took < 60, f"close waited {took:.0f} s for a statement with a 120 s deadline"
