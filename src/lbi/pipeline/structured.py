"""Structured calls for pipeline stages: one unusable answer costs one unit of work, not the run.

The door has already retried with repair turns and counted the failure (with its reason) in
the stage's accounting; the stage records an empty result for that unit and goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbi.models.base import ChatRequest, StructuredOutputError

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


async def ask_json(
    door: ModelDoor, request: ChatRequest, schema: dict[str, Any], stage: str
) -> Any:
    """The parsed JSON answer, or None when the model gave none that fits the schema."""
    try:
        return await door.chat_json(request, schema, stage=stage)
    except StructuredOutputError:
        return None
