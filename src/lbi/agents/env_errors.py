"""Environment calls inside an episode, and the one error their failures become.

An exception an environment raises mid-episode (a browser that crashed, a database connection
that dropped, a tool server that went away) is neither lbi's bug nor the agent's doing: the
episode fails with it, the run goes on, and the next run of the same command retries the
episode. Wrapping every such exception in `EnvCallFailed` here is what lets a stage tell it
from a bug in lbi's own code, which still stops the run with a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lbi.envs.base import EnvError
from lbi.envs.calls import env_call
from lbi.models.base import BudgetExceeded, ModelError

T = TypeVar("T")

# Raised inside an environment but not about it: its own "cannot start this task" (EnvError),
# the model calls a simulated user makes, a budget stop. They keep their own meaning.
_PASS = (EnvError, ModelError, BudgetExceeded)


class EnvCallFailed(EnvError):
    """An environment call raised during an episode; the message names the call and the error."""


async def guarded(env: Any, fn: Callable[..., T], /, *args: Any) -> T:
    """`env_call(env, fn, *args)`, with any exception but `_PASS` turned into `EnvCallFailed`."""
    try:
        return await env_call(env, fn, *args)
    except _PASS:
        raise
    except Exception as e:
        name = getattr(fn, "__name__", "call")
        raise EnvCallFailed(f"{name}: {type(e).__name__}: {e}") from e
