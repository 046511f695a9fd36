"""The tool-action format shared by tool-use environments (tau2, mcp) and the agent.

An action is one JSON object, `{"name": "<tool>", "arguments": {...}}`, so the same string
works whether the model wrote it as text or the backend returned a native function call.
Parsing is forgiving about how models dress JSON up (code fences, single quotes, chatter
after the object) and strict about what it means: anything unreadable becomes a
`ToolActionError` whose message the environment shows the model as the observation.

`BackgroundLoop` lives here too: both environments are synchronous (they run in worker
threads) over async clients, so each instance owns one event loop in one thread.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lbi.envs.base import ActionSpace, StepResult

T = TypeVar("T")

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


def _type_of(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"list[{_type_of(schema['items'])}]"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind:
        return str(kind)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return " | ".join(_type_of(o) for o in options if isinstance(o, dict))
    return "object" if "$ref" in schema else "any"


def describe_tool(tool: dict[str, Any]) -> str:
    """One tool's schema as text: signature line, description, one line per parameter."""
    fn = tool.get("function", tool)
    params = fn.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or [])
    sig = ", ".join(f"{p}{'' if p in required else '?'}" for p in props)
    lines = [f"{fn.get('name', '?')}({sig})"]
    desc = " ".join(str(fn.get("description") or "").split())
    if desc:
        lines.append(f"  {desc}")
    for pname, pschema in props.items():
        pschema = pschema if isinstance(pschema, dict) else {}
        need = "required" if pname in required else "optional"
        pdesc = " ".join(str(pschema.get("description") or "").split())
        lines.append(f"  - {pname} ({_type_of(pschema)}, {need}){': ' + pdesc if pdesc else ''}")
    return "\n".join(lines)


def describe_tools(tools: list[dict[str, Any]]) -> str:
    """OpenAI function schemas as text for a SYSTEM prompt (backends without native tools)."""
    if not tools:
        return "No tools are available."
    body = "\n\n".join(describe_tool(t) for t in tools)
    return f"Available tools ('?' marks an optional argument):\n\n{body}"


def tool_grammar(names: list[str]) -> str:
    """A GBNF rule body for one action: a known tool name, then a one-line arguments object."""
    alts = " | ".join(json.dumps(json.dumps(n)) for n in names)
    return f'"{{\\"name\\": " ({alts}) ", \\"arguments\\": {{" [^\\n]* "}}"'


def function_schema(
    name: str, description: str, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenAI function schema with every listed property required."""
    props = properties or {}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(props)},
        },
    }


class BackgroundLoop:
    """One asyncio loop in one daemon thread, so synchronous env methods can await clients."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait; on timeout the coroutine is cancelled."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def drain() -> None:  # let cancelled work finish cancelling before the stop
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(drain(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def split_markdown(text: str, max_level: int = 2) -> list[tuple[str, str]]:
    """Split markdown at headings of level <= max_level into (title, section) pairs; deeper
    headings stay inside their parent so a section keeps its sub-rules together."""
    sections: list[tuple[str, list[str]]] = []
    title, lines = "", list[str]()
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m and len(m.group(1)) <= max_level:
            if any(x.strip() for x in lines):
                sections.append((title, lines))
            title, lines = m.group(2).strip(), [line]
        else:
            lines.append(line)
    if any(x.strip() for x in lines):
        sections.append((title, lines))
    return [(t, "\n".join(body).strip()) for t, body in sections]


def tool_action_space(
    tools: list[dict[str, Any]], preface: str, examples: list[str]
) -> ActionSpace:
    """The action space every tool-use env shares: the JSON action format, the schemas
    (native function calling or `describe_tools` text), and a grammar over the tool names."""
    names = [t["function"]["name"] for t in tools]
    return ActionSpace(
        description=f"{preface.strip()}\n{ACTION_FORMAT}",
        grammar=tool_grammar(names),
        tools=tools,
        examples=examples,
    )
