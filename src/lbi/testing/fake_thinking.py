"""What the fake server's thinking profiles write before their answer.

A thinking model spends tokens on reasoning before it answers, from the same completion-token
limit, and writes that reasoning either inside `<think>…</think>` in the content (a server
with no reasoning parser) or in a field of its own (`reasoning_content`, `reasoning`). The
reasoning here holds decoys: an ACTION line and a JSON value that are not the answer, so a
client that reads the thinking as the answer takes them, visibly.
"""

from __future__ import annotations

from typing import Any

DECOY_ACTION = "delete decoy"
DECOY_INSTRUCTION = "a decoy task written while thinking"
_DECOYS = (
    "Let me think about what to do here.\n"
    f"Maybe ACTION: {DECOY_ACTION}\n"
    "Or answer with something like\n"
    '{"tasks": [{"instruction": "' + DECOY_INSTRUCTION + '"}], "labels": [], "verdicts": []}\n'
    "No, wait. Let me reconsider the request carefully"
)


def thinking_text(tokens: int) -> str:
    """About `tokens` tokens (4 characters each) of reasoning, decoys first."""
    size = tokens * 4
    filler = " and check it once more" * (size // 22 + 1)
    return (_DECOYS + filler)[:size]


def write_thinking(message: dict[str, Any], thought: str, finished: bool, field: str) -> None:
    """Put `thought` where the profile's server puts reasoning; `finished`: the limit left
    room to close it (else the answer was cut while thinking, and there is no answer)."""
    answer = message.get("content") or ""
    if field:
        message[field] = thought
        return
    if finished:
        message["content"] = f"<think>\n{thought}\n</think>\n\n{answer}"
    else:
        message["content"] = f"<think>\n{thought}"
