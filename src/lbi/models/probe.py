"""`lbi models probe`: ask an endpoint what it really does before a run depends on it.

Backends declare capabilities on trust (an OpenAI-compatible server may silently ignore
`response_format` or answer tool offers with prose). The probe makes three small calls through
the door with the cache off, so it measures the endpoint as it is today:
  1. does it answer at all, and how fast;
  2. does it honour a JSON schema — the prompt asks for a greeting, so only a server that
     constrains decoding returns the required integer field;
  3. does it return structured tool calls when offered one tool.
From that it names the mode lbi will run in for structured output and for tools.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from lbi.config import Config
from lbi.models.base import ChatRequest, ModelError
from lbi.models.door import ModelDoor, open_door

_SCHEMA = {
    "type": "object",
    "properties": {"lucky_number": {"type": "integer"}},
    "required": ["lucky_number"],
    "additionalProperties": False,
}
_TOOL = {
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


@dataclass
class ProbeReport:
    spec: str
    answers: bool
    latency_s: float | None = None
    error: str = ""
    json_schema: bool = False  # the endpoint constrained output to the schema
    json_detail: str = ""
    tools: bool = False  # the endpoint returned a structured tool call
    tools_detail: str = ""
    json_mode: str = "prompt+repair"
    tools_mode: str = "text tool format"


async def probe(spec: str, config: Config) -> ProbeReport:
    cfg = config.model_copy(deep=True)
    cfg.cache.enabled = False  # measure the endpoint, not yesterday's answers
    cfg.door.max_retries = min(cfg.door.max_retries, 2)
    try:
        door = open_door(spec, cfg)
    except ModelError as e:
        return ProbeReport(spec=spec, answers=False, error=str(e))
    try:
        report = ProbeReport(spec=spec, answers=False)
        ping = ChatRequest(
            messages=[{"role": "user", "content": "Reply with the single word: ok"}],
            max_tokens=8,
            kind="probe",
        )
        start = time.perf_counter()
        try:
            await door.chat(ping, stage="probe")
        except ModelError as e:
            report.error = str(e)
            return report
        report.answers, report.latency_s = True, time.perf_counter() - start
        await _probe_json(door, report)
        await _probe_tools(door, report)
        caps = door.capabilities
        if caps.json_schema and report.json_schema:
            report.json_mode = "native json_schema"
        if caps.tools and report.tools:
            report.tools_mode = "native tools"
        return report
    finally:
        await door.aclose()


async def _probe_json(door: ModelDoor, report: ProbeReport) -> None:
    request = ChatRequest(
        messages=[{"role": "user", "content": "Say hello to the user in one short sentence."}],
        max_tokens=64,
        json_schema=_SCHEMA,
        kind="probe",
    )
    try:
        text = (await door.chat(request, stage="probe")).text
    except ModelError as e:
        report.json_detail = f"request with a JSON schema failed: {e}"
        return
    try:
        value = json.loads(text)
    except ValueError:
        report.json_detail = f"answer is not JSON: {text[:60]!r}"
        return
    number = value.get("lucky_number") if isinstance(value, dict) else None
    if isinstance(number, int) and not isinstance(number, bool):
        report.json_schema, report.json_detail = True, "answer matched the schema"
    else:
        report.json_detail = f"JSON without the required integer field: {text[:60]!r}"


async def _probe_tools(door: ModelDoor, report: ProbeReport) -> None:
    request = ChatRequest(
        messages=[{"role": "user", "content": "What is the weather in Paris? Use the tool."}],
        max_tokens=64,
        tools=[_TOOL],
        kind="probe",
    )
    try:
        response = await door.chat(request, stage="probe")
    except ModelError as e:
        report.tools_detail = f"request with tools failed: {e}"
        return
    calls = [c for c in response.tool_calls if c.get("function", {}).get("name") == "get_weather"]
    if not calls:
        report.tools_detail = f"no tool call, answered in text: {response.text[:60]!r}"
        return
    try:
        args = json.loads(calls[0]["function"].get("arguments") or "")
    except ValueError:
        report.tools_detail = "tool call arguments are not JSON"
        return
    if isinstance(args, dict) and "city" in args:
        report.tools, report.tools_detail = True, f"called get_weather({json.dumps(args)})"
    else:
        report.tools_detail = f"tool call without the required argument: {args!r}"


def format_report(report: ProbeReport) -> str:
    if not report.answers:
        return f"{report.spec}: no answer — {report.error}"
    latency = f"{report.latency_s * 1000:.0f} ms" if report.latency_s is not None else "?"
    yes = {True: "yes", False: "no"}
    return "\n".join(
        [
            f"{report.spec}",
            f"  answers:      yes ({latency})",
            f"  json_schema:  {yes[report.json_schema]} — {report.json_detail}",
            f"  tool calls:   {yes[report.tools]} — {report.tools_detail}",
            f"  lbi will use: {report.json_mode}; {report.tools_mode}",
        ]
    )
