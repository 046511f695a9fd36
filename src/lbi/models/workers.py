"""A worker pool for in-process model calls that cannot be stopped midway (llama.cpp, generate).

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, and each
thread first runs every call already queued: Ctrl-C during a local-model eval printed the resume
message and then took 23 s to exit while llama.cpp finished answers nobody would read.

Here the threads are daemons, so exit does not wait for them, and a queued call whose future was
cancelled (asyncio cancels the executor future when the awaiting task is cancelled) never starts.
A call in flight when the process exits is abandoned; its answer was never stored, so a rerun
asks for it again (the disk cache keeps every answer that did come back).

Interpreter teardown while llama.cpp still computes in a daemon thread crashed (SIGSEGV, seen
2 of 4 times) or took seconds, so `exit_abandoning_calls` ends the process after the exit
handlers (servers stopped, logs flushed) and without that teardown. It did so only with a call
counted in flight, and a worker could take a queued call just after that count read 0: the
count now cannot rise once the pools are shut down, and any process that ran native calls
skips the teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_POOLS: weakref.WeakSet[DaemonPool] = weakref.WeakSet()

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonPool(Executor):
    """Up to `max_workers` daemon threads (one per call until then), taking calls in order."""

    _ids = itertools.count()

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max = max(1, max_workers)
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._abandoned = False  # the process is exiting: start nothing more
        self.running = 0  # calls started and not finished
        _POOLS.add(self)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._prefix}_{next(self._ids)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.put(None)  # wake the next worker too
                return
            future, fn, args, kwargs = item
            with self._lock:  # with abandon(): after it, `running` can only go down
                start = not self._abandoned and future.set_running_or_notify_cancel()
                if start:
                    self.running += 1
                elif not future.done():
                    future.cancel()
            if start:
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:  # handed to the awaiting caller
                    future.set_exception(e)
                finally:
                    with self._lock:
                        self.running -= 1
            del item, future, fn, args, kwargs

    def abandon(self) -> None:
        """Start no call from now on (the process is exiting); queued calls are cancelled."""
        with self._lock:
            self._abandoned = True
        self.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        self._queue.put(None)
        if wait:
            for thread in list(self._threads):
                thread.join()


def calls_in_flight() -> int:
    return sum(pool.running for pool in list(_POOLS))


def exit_abandoning_calls(code: int) -> None:
    """After in-process model calls: run the exit handlers, then end the process with `code`.

    First every pool stops taking calls (queued ones are cancelled; a worker that had just taken
    one drops it), so no native call can start after this point. Then, if any pool ever ran a
    call, the process ends with `os._exit` after the exit handlers: the interpreter's and the C++
    runtime's teardown (static destructors of llama.cpp) must not run while a call, or the
    native library's own threads, may still be computing — that crashed with SIGSEGV under load.
    Returns (doing nothing) when no pool ever started, so the caller exits the normal way.
    """
    pools = list(_POOLS)
    for pool in pools:
        pool.abandon()
    if not any(pool._threads for pool in pools):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
