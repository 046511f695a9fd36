"""The probe's second round: JSON mode, parallel tool calls, grammar, context length.

Each check is one small call through the door (cache off); a failure means "no", never an
exception: the probe reports, it does not stop.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

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


# Ollama's context when neither the model's Modelfile nor the request sets `num_ctx` (its
# FAQ; `OLLAMA_CONTEXT_LENGTH` changes it for the server, and lbi cannot see that variable).
OLLAMA_DEFAULT_CONTEXT = 4096


async def context_length(model: Any) -> int | None:
    """What `GET /models` states for the model: vLLM's `max_model_len`, llama.cpp's `meta.n_ctx`
    (else `meta.n_ctx_train`), `context_length`/`context_window` elsewhere; for Ollama, which
    states nothing there and silently cuts longer prompts, `num_ctx` from `/api/show`, else its
    default; None when nothing says."""
    base_url = getattr(model, "base_url", None)
    if not base_url:
        return None
    stated = await _models_context(model, base_url)
    if stated is None:
        stated = await _ollama_context(model, base_url)
    return stated


async def _ollama_context(model: Any, base_url: str) -> int | None:
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{root}/api/version") as resp:
                if resp.status != 200 or "version" not in await resp.json(content_type=None):
                    return None
            body = {"model": getattr(model, "model", "")}
            async with session.post(f"{root}/api/show", json=body) as resp:
                show = await resp.json(content_type=None) if resp.status == 200 else {}
    except (aiohttp.ClientError, TimeoutError, ValueError, TypeError):
        return None
    found = re.search(r"^num_ctx\s+(\d+)", str(show.get("parameters") or ""), re.MULTILINE)
    context = int(found.group(1)) if found else OLLAMA_DEFAULT_CONTEXT
    info = show.get("model_info")
    pairs = info.items() if isinstance(info, dict) else []
    trained = [v for k, v in pairs if k.endswith(".context_length") and isinstance(v, int)]
    return min([context, *trained])


async def _models_context(model: Any, base_url: str) -> int | None:
    headers = {"Authorization": f"Bearer {getattr(model, '_key', '')}"}
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{base_url.rstrip('/')}/models", headers=headers) as resp,
        ):
            if resp.status != 200:
                return None
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    listed = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    named = [i for i in listed if i.get("id") == getattr(model, "model", None)]
    # llama.cpp serves its one model under any name and lists it by its file path.
    for item in named or (listed if len(listed) == 1 else []):
        meta: dict[str, Any] = item["meta"] if isinstance(item.get("meta"), dict) else {}
        for value in (
            item.get("max_model_len"),
            item.get("context_length"),
            item.get("context_window"),
            meta.get("n_ctx"),  # the context the server runs with (its -c), not the trained one
            meta.get("n_ctx_train"),
        ):
            if isinstance(value, int) and value > 0:
                return value
    return None
