"""The tool-action format shared by tool-use environments and the agent.

An action is one JSON object, `{"name": "<tool>", "arguments": {...}}`, so the same string
works whether the model wrote it as text or the backend returned a native function call.
Parsing is forgiving about how models dress JSON up (code fences, single quotes, chatter
after the object) and strict about what it means: anything unreadable becomes a
`ToolActionError` whose message the environment shows the model as the observation.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

RESPOND = "respond"  # the pseudo-tool for talking to the user (tau2)
DONE = "done"  # the pseudo-tool that ends an episode

ACTION_FORMAT = (
    'Each action is exactly one JSON object on one line: {"name": "<tool name>", '
    '"arguments": {<argument name>: <value>, ...}}. Use {} when a tool takes no arguments.'
)

_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARG_KEYS = ("arguments", "args", "parameters", "input")
_FENCE = re.compile(r"```[\w-]*\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


class ToolActionError(ValueError):
    """An action that is not a readable tool call; `str(error)` is the observation text."""


def format_tool_action(name: str, args: dict[str, Any] | None = None) -> str:
    """The canonical one-line action string for a tool call."""
    return json.dumps({"name": name, "arguments": args or {}}, ensure_ascii=False)


def _candidates(text: str) -> list[str]:
    """Strings that may hold the object: fenced blocks first, then the whole text."""
    found = [m.group(1).strip() for m in _FENCE.finditer(text)]
    return [*found, text]


def _first_object(text: str) -> dict[str, Any] | None:
    """The first balanced `{...}` in `text`, read as JSON, else as a Python literal."""
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value = _DECODER.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            value = _python_literal(text, start)
        if isinstance(value, dict):
            return value
    return None


def _python_literal(text: str, start: int) -> Any:
    """Single-quoted dicts ({'name': 'x'}) are common; read them with the literal parser."""
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            snippet = text[start : end + 1]
            snippet = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", snippet))
            snippet = re.sub(r"\bnull\b", "None", snippet)
            try:
                return ast.literal_eval(snippet)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    return None


def _pick(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    for key in keys:
        if key in obj:
            return True, obj[key]
    return False, None


def tool_call_from_object(obj: dict[str, Any]) -> ToolCall:
    """Read `{"name", "arguments"}` and its common variants (OpenAI's nested `function`,
    `args`/`parameters`, arguments given as a JSON string); raise ToolActionError."""
    if isinstance(obj.get("function"), dict):  # {"type": "function", "function": {...}}
        obj = obj["function"]
    has_name, name = _pick(obj, _NAME_KEYS)
    if not has_name:
        raise ToolActionError(
            f'the action object has no "name" field (keys: {", ".join(obj) or "none"})'
        )
    if not isinstance(name, str) or not name.strip():
        raise ToolActionError(f'"name" must be a non-empty string, got {name!r}')
    _, args = _pick(obj, _ARG_KEYS)
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            raise ToolActionError(f'"arguments" of {name} is not valid JSON ({e.msg})') from None
    if not isinstance(args, dict):
        raise ToolActionError(
            f'"arguments" of {name} must be a JSON object, got {type(args).__name__}'
        )
    return ToolCall(name=name.strip(), arguments=args)


def parse_tool_action(action: str) -> ToolCall | ToolActionError:
    """Parse an action string; returns (never raises) a ToolActionError with a readable reason."""
    text = (action or "").strip()
    if not text:
        return ToolActionError(f"empty action. {ACTION_FORMAT}")
    for candidate in _candidates(text):
        obj = _first_object(candidate)
        if obj is not None:
            try:
                return tool_call_from_object(obj)
            except ToolActionError as e:
                return e
    return ToolActionError(f"no JSON object found in the action. {ACTION_FORMAT}")


def tool_call_from_openai(tool_call: dict[str, Any]) -> str:
    """A native function-calling result -> the action string. Malformed arguments are kept
    as a string so the environment reports them as an error observation."""
    nested = tool_call.get("function")
    fn: dict[str, Any] = nested if isinstance(nested, dict) else tool_call
    name = str(fn.get("name") or "")
    raw = fn.get("arguments")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return json.dumps({"name": name, "arguments": raw}, ensure_ascii=False)
    return json.dumps(
        {"name": name, "arguments": raw if raw is not None else {}}, ensure_ascii=False
    )
