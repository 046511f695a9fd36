"""One executor abstraction for episodes and judge calls.

Stages hand it async jobs and a concurrency bound; it yields results as they finish. The local
asyncio executor is the default; a distributed engine (Ray) would implement the same `map`, so
scaling out changes this module only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], concurrency: int
    ) -> AsyncIterator[tuple[T, R]]: ...


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
