"""Structured calls for pipeline stages: one unusable answer costs one unit of work, not the run.

The door has already retried (transient errors, then repair turns) and counted the failure,
with its reason, in the stage's accounting; the stage stores a failure for that unit instead of
its output and goes on (`lbi.pipeline.failures`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbi.models.base import ChatRequest, ModelError
from lbi.models.fitting import Build, fitted_call

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor
    from lbi.pipeline.failures import StageFailures


async def ask_json(
    door: ModelDoor,
    request: ChatRequest | Build,
    schema: dict[str, Any],
    stage: str,
    failures: StageFailures,
    unit: str,
    label: str = "",
) -> Any:
    """The parsed JSON answer, or None when the unit failed: no usable JSON after repair, a cut
    answer, retries exhausted, a refused request (a context overflow). The failure is recorded
    for `unit` in `failures`, so the stage does not mark the unit done and the next run asks
    again; an error that is no unit's fault (a rejected key) is raised. `request` may be a
    `build(keep)` of a request around a text that may be cut: it is then fitted to the
    endpoint's context (`lbi.models.fitting`)."""
    build = request if callable(request) else (lambda _keep: request)
    try:
        return await fitted_call(door, build, lambda r: door.chat_json(r, schema, stage=stage))
    except ModelError as e:
        failures.fail(unit, e, label)
        return None
