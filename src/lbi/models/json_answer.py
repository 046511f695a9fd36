"""Reading a model's JSON answer: parse it (plain, fenced or embedded in prose), check it
against the subset of JSON Schema lbi's prompts use, and word the repair turn that quotes the
error and the schema back to the model."""

from __future__ import annotations

import json
from typing import Any

from lbi.models.thinking import split_thinking


def repair_turns(answer: str, error: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": (
                f"That answer could not be used: {error}\n"
                "Reply with only a JSON value (no prose, no code fences) matching this JSON schema:\n"
                + json.dumps(schema, separators=(",", ":"))
            ),
        },
    ]


_DECODER = json.JSONDecoder()


def extract_json(text: str) -> Any:
    """Parse a model's JSON answer: plain, inside ```json fences, or the first balanced
    object/array embedded in prose; never from a `<think>` block before it. Raises ValueError
    naming what went wrong."""
    stripped = split_thinking(text)[0].strip()
    if not stripped:
        raise ValueError("the answer was empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as e:
        first_error = f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    if "```" in stripped:
        inside = stripped.split("```", 2)[1]
        inside = inside.removeprefix("json").removeprefix("JSON")
        try:
            return json.loads(inside.strip())
        except json.JSONDecodeError:
            pass
    # raw_decode parses one value from a start position and respects strings and nesting,
    # so it finds a balanced object/array without a hand-written bracket counter.
    tries = 0
    for i, ch in enumerate(stripped):
        if ch in "{[":
            try:
                return _DECODER.raw_decode(stripped, i)[0]
            except json.JSONDecodeError:
                tries += 1
                if tries >= 50:
                    break
    raise ValueError(first_error)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def check_schema(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """The subset of JSON Schema that structured prompts use: type, required, properties,
    items, enum. Raises ValueError with a path, which becomes the repair message."""
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _TYPES:
        ok = isinstance(value, _TYPES[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            raise ValueError(f"{where} should be of type {expected}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{where} should be one of {schema['enum']}, got {value!r}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise ValueError(f"{where} is missing the required field {name!r}")
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and isinstance(sub, dict):
                check_schema(value[name], sub, f"{where}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            check_schema(item, schema["items"], f"{where}[{i}]")
