"""Tool schemas (OpenAI function format) as prompt text, as a grammar, and as an action space."""

from __future__ import annotations

import json
from typing import Any

from lbi.envs.base import ActionSpace
from lbi.envs.tools.actions import ACTION_FORMAT


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
