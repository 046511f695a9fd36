"""One environment, one call at a time: `await env_call(env, env.step, action)`.

Environment calls run in worker threads (`asyncio.to_thread`) so a slow step does not stall
the event loop. A cancelled await (Ctrl-C, a sibling episode's failure) does not stop the
thread, and the episode's `finally` then closed the environment from another thread while the
first call was still inside it: the SQL env's `close()` freed the SQLite connection under a
running `state_digest`, and the process died with SIGSEGV instead of exiting 130 (issue 26,
seen 1 in 8 Ctrl-Cs with the Qwen 0.5B). Every call for one environment, `close` included, now
holds that environment's lock, so `close` waits for the call in flight instead of racing it.
Environments must bound their own calls (statement deadlines, step timeouts), as they do.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_SHARED = threading.Lock()  # for an environment that cannot be weakly referenced or hashed
_GUARD = threading.Lock()


def env_lock(env: Any) -> threading.Lock:
    """The lock every call into `env` holds (one per environment object)."""
    with _GUARD:
        try:
            lock = _LOCKS.get(env)
            if lock is None:
                lock = _LOCKS[env] = threading.Lock()
        except TypeError:
            return _SHARED
        return lock


async def env_call(env: Any, fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)` in a worker thread while holding `env`'s lock."""
    lock = env_lock(env)

    def locked() -> T:
        with lock:
            return fn(*args)

    return await asyncio.to_thread(locked)


async def env_close(env: Any) -> None:
    """`env.close()` after the call in flight, if any. An environment may offer `interrupt()`
    (safe to call from another thread) to cut that call short, so an abandoned episode's
    close does not wait out, say, a statement deadline; the SQL env does."""
    lock = env_lock(env)

    def close() -> None:
        if not lock.acquire(blocking=False):
            stop = getattr(env, "interrupt", None)
            if callable(stop):
                stop()
            lock.acquire()
        try:
            env.close()
        finally:
            lock.release()

    await asyncio.to_thread(close)
