"""The guards every tool env's `step` opens with: an episode that is over, an unreadable action."""

from __future__ import annotations

from typing import Any

from lbi.envs.base import StepResult
from lbi.envs.tools.actions import ToolActionError, ToolCall, parse_tool_action


def tool_error(message: str, over: bool = False, **info: Any) -> StepResult:
    """A step that did nothing but report `message` to the model (no reward)."""
    return message, 0.0, over, False, {"error": True, **info}


def open_step(action: str, over: bool, what: str) -> ToolCall | StepResult:
    """What every tool env's `step` does first: refuse once the `what` (episode, conversation)
    is over, then parse the action. A tuple back is the step's result, ready to return."""
    if over:
        return tool_error(f"Error: the {what} is over; reset to start another.", over=True)
    call = parse_tool_action(action)
    return tool_error(f"Error: {call}") if isinstance(call, ToolActionError) else call
