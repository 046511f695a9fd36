"""Requests built around a text that may be cut, fitted to the endpoint's context (issue 27,
item 3): a doc chunk for the task writer, observations for exploration and for the query writer.

`build(keep)` returns the request with `keep` (1.0: all) of its cuttable text. Before the call,
`keep` halves until the prompt, counted with `lbi.tokens.budget_counter`, and the answer's budget
fit the context the endpoint states (or lbi learnt); a request that fits from the start is the one
always sent. If the endpoint still answers with a context overflow (the count missed, or it had
stated no context), the request is fitted to three quarters of what was sent, or of the context
its answer states, and sent once more. The act prompt has its own ladder (`lbi.agents.fit`), and
batches (labels, verdicts) are packed and split (`lbi.pipeline.backward`, `.filter`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from lbi.models.base import ChatRequest, ContextOverflow
from lbi.tokens import Counter, budget_counter, prompt_tokens

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor

T = TypeVar("T")
Build = Callable[[float], ChatRequest]
MIN_KEEP = 1 / 32


async def prepared(door: object) -> None:
    """The door has learnt what it can of its endpoint (`ModelDoor.prepare`: its context)."""
    prepare = getattr(door, "prepare", None)
    if prepare is not None:
        await prepare()


def needed(request: ChatRequest, count: Counter) -> int:
    """The prompt's tokens and the answer's budget."""
    return prompt_tokens(request.messages, count) + (request.max_tokens or 0)


def fit_request(build: Build, limit: int | None, count: Counter) -> ChatRequest:
    keep, request = 1.0, build(1.0)
    while limit and keep > MIN_KEEP and needed(request, count) > limit:
        keep /= 2
        request = build(keep)
    return request


async def fitted_call(
    door: ModelDoor, build: Build, call: Callable[[ChatRequest], Awaitable[T]]
) -> T:
    """`call(request)` with the request fitted; once more, smaller, after an overflow."""
    await prepared(door)
    count = budget_counter(door)
    request = fit_request(build, door.capabilities.context_length, count)
    try:
        return await call(request)
    except ContextOverflow as e:
        sent = needed(request, count)
        smaller = fit_request(build, min(e.limit or sent, sent) * 3 // 4, count)
        if smaller == request:
            raise
    return await call(smaller)
