"""Structured calls for pipeline stages: one unusable answer costs one unit of work, not the run.

The door has already retried with repair turns and counted the failure (with its reason) in
the stage's accounting; the stage records an empty result for that unit and goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbi.models.base import ChatRequest, RetriesExhausted, StructuredOutputError

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


async def ask_json(
    door: ModelDoor,
    request: ChatRequest,
    schema: dict[str, Any],
    stage: str,
    failed: set[str] | None = None,
    unit: str = "",
) -> Any:
    """The parsed JSON answer, or None when the model gave none that fits the schema.

    With `failed`, a failure that is not the unit's fault (no usable JSON after repair, a cut
    answer, retries exhausted on timeouts or 5xx) adds `unit` to it: the stage then stores
    what it has but does not mark the unit done, so the next run asks again."""
    try:
        return await door.chat_json(request, schema, stage=stage)
    except StructuredOutputError:
        if failed is not None:
            failed.add(unit)
        return None
    except RetriesExhausted:
        if failed is None:
            raise
        failed.add(unit)
        return None
