"""The probe's second round: JSON mode, parallel tool calls, grammar (the context length:
`lbi.models.served`).

Each check is one small call through the door (cache off); a failure means "no", never an
exception: the probe reports, it does not stop.
"""

from __future__ import annotations

import json

from lbi.models.base import ChatRequest, ModelError
from lbi.models.door import ModelDoor

# The one tool every probe offers (probe.py's native-tools check and the parallel-calls check).
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Look up the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def probe_json_object(door: ModelDoor) -> bool:
    """Does `{"type": "json_object"}` give a JSON object? (Asked with the backend set to JSON
    mode for this one call; the prompt names JSON, as OpenAI's JSON mode requires.)"""
    record = getattr(door.model, "record", None)
    if record is None:
        return False
    saved = record.json_mode
    record.json_mode = "json_object"
    request = ChatRequest(
        messages=[{"role": "user", "content": "Give a JSON object with one key `ok` set to true."}],
        max_tokens=256,
        json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
        kind="probe",
    )
    try:
        text = (await door.chat(request, stage="probe")).text
        value = json.loads(text)
    except (ModelError, ValueError):
        return False
    finally:
        if record.json_mode == "json_object":  # a refusal may have stepped it down already
            record.json_mode = saved
    return isinstance(value, dict)


async def probe_parallel(door: ModelDoor) -> bool:
    """Two cities in one question: does one answer carry two tool calls?"""
    request = ChatRequest(
        messages=[
            {
                "role": "user",
                "content": "What is the weather in Paris and in Rome? Call the tool once per city, "
                "both in this answer.",
            }
        ],
        max_tokens=256,
        tools=[PROBE_TOOL],
        kind="probe",
    )
    try:
        response = await door.chat(request, stage="probe")
    except ModelError:
        return False
    return len(response.tool_calls) >= 2


async def probe_grammar(door: ModelDoor) -> bool:
    """A GBNF grammar that only allows `42`: an endpoint that takes grammars answers 42."""
    record = getattr(door.model, "record", None)
    if record is None:
        return bool(door.capabilities.grammar)
    saved, record.grammar = record.grammar, True
    request = ChatRequest(
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        grammar='root ::= "42"',
        kind="probe",
    )
    try:
        text = (await door.chat(request, stage="probe")).text
    except ModelError:
        text = ""
    ok = text.strip() == "42"
    record.grammar = saved
    return ok
