"""Parse the agent's `REASON: ... ACTION: ...` answer, robustly.

Models wrap answers in code fences, bold the labels, change case, or add chatter after the
action. We accept all of that; what we cannot read becomes a `ParseError` that the agent turns
into an error observation, never a crash. A thinking model's `<think>` block is not the answer:
an ACTION written while thinking is never taken (lbi.models.thinking).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lbi.models.thinking import split_thinking

_LABEL = re.compile(
    r"^[\s>*_#`-]*(REASON|THOUGHT|ACTION)\s*[*_]*\s*[:：]\s*[*_]*", re.IGNORECASE | re.MULTILINE
)


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class ReAct:
    reason: str
    action: str


def _clean_action(text: str) -> str:
    text = text.strip()
    fence = re.match(r"^```[\w-]*\s*\n?(.*?)\n?```", text, re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    elif text.startswith("`") and text.endswith("`") and len(text) > 1:
        text = text.strip("`").strip()
    if text.startswith("{") and "}" in text:  # a JSON tool call may be pretty-printed
        return text[: text.rindex("}") + 1]
    # Otherwise an action is one paragraph: drop chatter the model adds after a blank line.
    return text.split("\n\n", 1)[0].strip()


def parse_react(text: str) -> ReAct:
    text, _ = split_thinking(text)
    if not text or not text.strip():
        raise ParseError("empty answer; expected 'REASON: ...' then 'ACTION: ...'")
    labels = list(_LABEL.finditer(text))
    actions = [m for m in labels if m.group(1).upper() == "ACTION"]
    if not actions:
        raise ParseError("no 'ACTION:' line in the answer")
    act = actions[0]
    nxt = next((m for m in labels if m.start() > act.start()), None)
    action = _clean_action(text[act.end() : nxt.start() if nxt else len(text)])
    if not action:
        raise ParseError("'ACTION:' is empty")
    reasons = [
        m for m in labels if m.group(1).upper() in ("REASON", "THOUGHT") and m.start() < act.start()
    ]
    reason = (
        text[reasons[0].end() : act.start()].strip() if reasons else text[: act.start()].strip()
    )
    return ReAct(reason=reason, action=action)


def react_grammar(action_rule: str) -> str:
    """A GBNF grammar for the whole answer, with the environment's action rule inside.

    Whitespace after each label is left to the model: tokenizers fold a leading space into the
    next word (" SELECT") and small models like a line break after a label; forcing exactly
    "ACTION: " pushed SmolLM2 onto unlikely tokens ("REASON: 1 / ACTION: ALTER 1.0.1...")
    where the free choice gave a sentence of reasoning (measured).

    REASON is capped at 600 characters: 200 (sized for SmolLM2) cut Qwen2.5-Coder-1.5B's
    diagnosis of its own error mid-sentence and forced the ACTION line before the fix was
    written (issue 26); 1,200 let the 0.5B ramble (4x the wall time on spider, no better).

    The answer may end with a line break, and then it is over: an action rule that runs to the
    end of the line (SQL, typed text) otherwise leaves no way to finish but the end-of-text
    token, and a model that would have ended the line keeps writing until `max_tokens`.
    """
    return (
        'root ::= "REASON:" [ \\n]{0,2} reason "\\nACTION:" [ \\n]{0,2} action "\\n"?\n'
        "reason ::= [^\\n]{1,600}\n"
        f"action ::= {action_rule}\n"
    )
