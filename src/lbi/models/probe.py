"""`lbi models probe`: ask an endpoint what it really does before a run depends on it.

Backends declare capabilities on trust (an OpenAI-compatible server may silently ignore
`response_format` or answer tool offers with prose). The probe makes a few small calls through
the door with the cache off, so it measures the endpoint as it is today:
  1. does it answer at all, and how fast (a refused `temperature`/`max_tokens` is learnt here);
  2. does it honour a JSON schema — the prompt asks for a greeting, so only a server that
     constrains decoding returns the required integer field; if not, does JSON mode
     (`{"type": "json_object"}`) give JSON;
  3. does it return structured tool calls when offered one tool, and several in one answer;
  4. does it take a llama.cpp GBNF grammar; what context length `/models` states.
For an `openai:` endpoint the findings are stored per base_url + model (`endpoints.json` next
to the call cache), the backend starts from them, and the report names the modes the backend
then uses (after `models.openai.*` overrides).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from lbi.config import Config
from lbi.models.base import ChatRequest, ModelError
from lbi.models.door import ModelDoor, open_door
from lbi.models.probe_extra import (
    PROBE_TOOL,
    probe_grammar,
    probe_json_object,
    probe_parallel,
)
from lbi.models.registry import make_model
from lbi.models.served import context_length

_SCHEMA = {
    "type": "object",
    "properties": {"lucky_number": {"type": "integer"}},
    "required": ["lucky_number"],
    "additionalProperties": False,
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
    json_object: bool = False  # JSON mode gave JSON (asked only when the schema was not kept)
    parallel_tools: bool = False  # several tool calls in one answer
    grammar: bool = False
    refused: list[str] = field(default_factory=list)
    context_length: int | None = None
    stored: str = ""  # where the record was written


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
            max_tokens=16,
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
        if not report.json_schema:
            report.json_object = await probe_json_object(door)
        await _probe_tools(door, report)
        if report.tools:
            report.parallel_tools = await probe_parallel(door)
        report.grammar = await probe_grammar(door)
        report.context_length = await context_length(door.model)
        _store(door, report, cfg)
        await _modes(spec, cfg, report, door)
        return report
    finally:
        await door.aclose()


def _store(door: ModelDoor, report: ProbeReport, config: Config) -> None:
    """Write what was found where the `openai:` backend reads it on its next start."""
    record = getattr(door.model, "record", None)
    store = getattr(door.model, "store", None)
    if record is None:
        return
    record.json_mode = (
        "json_schema" if report.json_schema else "json_object" if report.json_object else "prompt"
    )
    record.tools, record.parallel_tools = report.tools, report.parallel_tools
    record.grammar = report.grammar
    record.context_length = report.context_length
    record.source = "probe"
    report.refused = list(record.refused)
    if store is not None:
        store.put(record)
        report.stored = str(store.path)


async def _modes(spec: str, config: Config, report: ProbeReport, door: ModelDoor) -> None:
    """The modes the backend uses from now on: for `openai:` a fresh backend built from the
    stored record and the config's overrides; for others, what they declare and the probe saw."""
    caps = door.capabilities
    if getattr(door.model, "record", None) is not None:
        fresh = make_model(spec, config)
        mode, tools = fresh.capabilities.json_mode, fresh.capabilities.tools
        await fresh.aclose()
    else:
        mode = "json_schema" if caps.json_schema and report.json_schema else "prompt"
        tools = caps.tools and report.tools
    report.json_mode = {
        "json_schema": "native json_schema",
        "json_object": "json_object + schema in prompt + repair",
    }.get(mode, "prompt+repair")
    report.tools_mode = "native tools" if tools else "text tool format"


async def _probe_json(door: ModelDoor, report: ProbeReport) -> None:
    request = ChatRequest(
        messages=[{"role": "user", "content": "Say hello to the user in one short sentence."}],
        max_tokens=256,  # room for a reasoning model's hidden reasoning
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
        max_tokens=256,
        tools=[PROBE_TOOL],
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
            f"  json_object:  {yes[report.json_object]}"
            + (" (not needed)" if report.json_schema else ""),
            f"  tool calls:   {yes[report.tools]} — {report.tools_detail}",
            f"  parallel:     {yes[report.parallel_tools]}",
            f"  grammar:      {yes[report.grammar]}",
            f"  refuses:      {', '.join(report.refused) or 'nothing lbi sends'}",
            f"  context:      {report.context_length or 'not stated'}",
            f"  lbi will use: {report.json_mode}; {report.tools_mode}",
        ]
        + ([f"  recorded in:  {report.stored}"] if report.stored else [])
    )
