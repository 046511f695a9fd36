"""JSON schemas made fit for OpenAI's strict Structured Outputs (`"strict": true`).

Strict mode takes a subset of JSON Schema: every object lists all its properties as required and
sets `additionalProperties: false`, and only some keywords are allowed (OpenAI's "Supported
schemas" guide; string lengths are not among them). lbi's schemas bound their strings
(`maxLength`) so a looping small model still closes its JSON; a hosted model that is decoded
under the schema does not loop, so in the strict copy the bound moves into the description.
A schema with an optional property cannot be made strict without changing its meaning: it is
sent as it is, without `strict`.
"""

from __future__ import annotations

from typing import Any

# Keywords strict mode takes (besides the structural ones handled below).
_ALLOWED = frozenset(
    {
        "type", "description", "title", "enum", "const", "anyOf", "$defs", "$ref",
        "properties", "required", "additionalProperties", "items",
        "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf", "pattern", "format",
    }
)  # fmt: skip
# Bounds on strings that strict mode refuses, said in words instead.
_WORDED = {"maxLength": "at most {} characters", "minLength": "at least {} characters"}


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A strict copy of `schema`, or None when it cannot be made strict."""
    try:
        return _strict(schema)
    except _NotStrict:
        return None


class _NotStrict(Exception):
    pass


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    words = []
    for key, value in node.items():
        if key in _WORDED:
            words.append(_WORDED[key].format(value))
        elif key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "$defs"):
            out[key] = (
                {k: _strict(v) for k, v in value.items()} if key == "$defs" else _strict(value)
            )
        elif key in _ALLOWED:
            out[key] = value
        else:
            raise _NotStrict(key)
    if words:
        said = "; ".join(words)
        out["description"] = f"{out['description']} ({said})" if "description" in out else said
    if "properties" in out:
        if set(out.get("required") or []) != set(out["properties"]):
            raise _NotStrict("an optional property")
        if out.get("additionalProperties", False) is not False:
            raise _NotStrict("additionalProperties")
        out["additionalProperties"] = False
    return out
