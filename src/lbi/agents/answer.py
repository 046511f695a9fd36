"""Read the actions out of one model answer: every native tool call in order, or the one
`REASON/ACTION` text action. An answer cut at the token limit yields no action at all: a
half-written SQL query or tool call must never run as if it were the whole one.
"""

from __future__ import annotations

from lbi.agents.parse import ParseError, parse_react
from lbi.models.base import ChatResponse

CUT = "the answer was cut at the token limit, so it was not executed; answer more briefly"
NATIVE_HINT = "Call exactly one tool."
TEXT_HINT = "Answer with 'REASON: ...' then 'ACTION: ...'."


def read_actions(resp: ChatResponse) -> list[tuple[str, str]]:
    """(reason, action) for each action of the answer, in order; ParseError if none is usable."""
    if resp.truncated:
        raise ParseError(CUT)
    if resp.tool_calls:
        from lbi.envs.tools.actions import tool_call_from_openai

        reason = resp.text.strip()
        return [
            (reason if i == 0 else "", tool_call_from_openai(c))
            for i, c in enumerate(resp.tool_calls)
        ]
    parsed = parse_react(resp.text)
    return [(parsed.reason, parsed.action)]


def unreadable(error: ParseError, native_tools: bool) -> str:
    hint = NATIVE_HINT if native_tools else TEXT_HINT
    return f"Error: could not read your answer ({error}). {hint}"


def after_end(action: str) -> str:
    """The observation for a tool call that came after the episode had already ended."""
    return f"Tool error: not run ({action[:80]}): the episode ended at the previous call."
