"""With native tool calls, the previous answer goes back to the model as the API expects: an
assistant message carrying its tool calls, then one `role: tool` message per call with what it
returned. The older steps stay in the HISTORY text of the user message, as in text mode.
"""

from __future__ import annotations

import json
from typing import Any

from lbi.types import Step

_UNREADABLE = "Error: could not read your answer"


def _call(step: Step) -> dict[str, Any] | None:
    """The tool call a step executed, or None (a text answer, an unreadable one)."""
    if step.tools is None or step.next_observation.startswith(_UNREADABLE):
        return None
    try:
        value = json.loads(step.action)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    args = value.get("arguments", {})
    return {
        "id": f"call_{step.index}",
        "type": "function",
        "function": {
            "name": value["name"],
            "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False),
        },
    }


def split_last_answer(history: list[Step]) -> int:
    """Where the steps of the last model answer start (len(history) when it made no tool call)."""
    if not history or _call(history[-1]) is None:
        return len(history)
    last, start = history[-1], len(history) - 1
    while (
        start > 0
        and _call(history[start - 1]) is not None
        and history[start - 1].raw == last.raw
        and history[start - 1].messages == last.messages
    ):
        start -= 1
    return start


def tool_turns(steps: list[Step], clip: int) -> list[dict[str, Any]]:
    """The assistant message with the answer's tool calls and the tool messages answering them."""
    pairs = [(s, c) for s, c in ((s, _call(s)) for s in steps) if c is not None]
    if not pairs:
        return []
    calls = [c for _, c in pairs]
    turns: list[dict[str, Any]] = [
        {"role": "assistant", "content": steps[0].reason or None, "tool_calls": calls}
    ]
    for step, call in pairs:
        result = step.next_observation
        if len(result) > clip:
            result = result[:clip] + f"\n... [{len(result) - clip} more characters]"
        turns.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return turns
