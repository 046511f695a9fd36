"""`strict: true` for OpenAI's Structured Outputs, wherever the schema allows it."""

from __future__ import annotations

from typing import Any

from lbi.config import OpenAIModelConfig
from lbi.models.base import ChatRequest
from lbi.models.endpoints import default_record
from lbi.models.openai_request import build_body
from lbi.models.strict import strict_schema
from lbi.pipeline.filter import verdicts_schema

OPENAI = "https://api.openai.com/v1"
LOCAL = "http://127.0.0.1:8000/v1"


def _format(schema: dict[str, Any], base_url: str, strict: str = "auto") -> dict[str, Any]:
    cfg = OpenAIModelConfig(base_url=base_url, strict=strict)  # type: ignore[arg-type]
    request = ChatRequest(messages=[{"role": "user", "content": "judge"}], json_schema=schema)
    return dict(build_body("m", request, default_record(base_url, "m"), cfg)["response_format"])


def _objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [o for x in node for o in _objects(x)]
    if not isinstance(node, dict):
        return []
    mine = [node] if "properties" in node else []
    return mine + [o for v in node.values() for o in _objects(v)]


def test_openai_gets_a_strict_schema_with_every_object_closed_and_lengths_in_words() -> None:
    spec = _format(verdicts_schema(2), OPENAI)["json_schema"]
    assert spec["strict"] is True
    objects = _objects(spec["schema"])
    assert len(objects) >= 5  # the answer, each verdict, each criterion
    assert all(o["additionalProperties"] is False for o in objects)
    assert all(set(o["required"]) == set(o["properties"]) for o in objects)
    assert "maxLength" not in str(spec["schema"]) and "at most 160 characters" in str(spec)


def test_other_servers_keep_the_schema_as_it_is_unless_asked() -> None:
    spec = _format(verdicts_schema(2), LOCAL)["json_schema"]
    assert "strict" not in spec and spec["schema"] == verdicts_schema(2)  # maxLength kept
    assert _format(verdicts_schema(2), LOCAL, strict="on")["json_schema"]["strict"] is True
    assert "strict" not in _format(verdicts_schema(2), OPENAI, strict="off")["json_schema"]


def test_a_schema_with_an_optional_property_is_sent_without_strict() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    assert strict_schema(schema) is None
    spec = _format(schema, OPENAI)["json_schema"]
    assert "strict" not in spec and spec["schema"] == schema
    assert strict_schema({"type": "object", "properties": {}, "patternProperties": {}}) is None
