"""The body of one chat-completions request, shaped by what the endpoint supports, and the
reading of a 400 that says which part of it the endpoint refused.

Kept apart from the transport (`openai_backend`) because it is pure: a `ChatRequest` plus an
`EndpointRecord` in, a JSON body out, and a refusal in, the field to drop out.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from lbi.models.base import ChatRequest
from lbi.models.endpoints import EndpointRecord
from lbi.models.openai_errors import TOKEN_FIELDS, read_error
from lbi.models.strict import strict_schema

if TYPE_CHECKING:
    from lbi.config import OpenAIModelConfig

# Fields lbi may send that some endpoint refuses; a refusal naming one of them drops it (or,
# for `response_format`, steps down the JSON mode) and the call is made again at once.
OPTIONAL_FIELDS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "response_format",
    "reasoning_effort",
    "grammar",
    "parallel_tool_calls",
    "tools",
)


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with only a JSON value (no prose, no code fences) matching this JSON schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def _with_instruction(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The schema goes at the end of the last user message (endpoints that fold or refuse
    several system messages still see it); a non-text last message gets a new user turn."""
    out = [dict(m) for m in messages]
    if out and out[-1].get("role") == "user" and isinstance(out[-1].get("content"), str):
        out[-1]["content"] = f"{out[-1]['content']}\n\n{text}"
    else:
        out.append({"role": "user", "content": text})
    return out


def token_field(record: EndpointRecord, cfg: OpenAIModelConfig | None) -> str:
    wanted = getattr(cfg, "token_param", "auto")
    if wanted != "auto":
        return str(wanted)
    return "max_completion_tokens" if "max_tokens" in record.refused else "max_tokens"


def build_body(
    model: str, request: ChatRequest, record: EndpointRecord, cfg: OpenAIModelConfig | None
) -> dict[str, Any]:
    refused = set(record.refused) | set(getattr(cfg, "refuse", []) or [])
    messages = request.messages
    body: dict[str, Any] = {"model": model}
    if "temperature" not in refused:
        body["temperature"] = request.temperature
    field = token_field(record, cfg)
    if field not in refused:
        cap = record.max_output_tokens
        body[field] = min(request.max_tokens, cap) if cap else request.max_tokens
    if request.seed is not None and "seed" not in refused:
        body["seed"] = request.seed
    if request.stop and "stop" not in refused:
        body["stop"] = request.stop
    if request.tools and record.tools and "tools" not in refused:
        body["tools"] = request.tools
    effort = getattr(cfg, "reasoning_effort", None)
    if effort and "reasoning_effort" not in refused:
        body["reasoning_effort"] = effort
    if request.grammar and record.grammar and "grammar" not in refused:
        body["grammar"] = request.grammar
    elif request.json_schema is not None:
        mode = record.json_mode if "response_format" not in refused else "prompt"
        if mode == "json_schema":
            spec: dict[str, Any] = {"name": "answer", "schema": request.json_schema}
            strict = strict_schema(request.json_schema) if wants_strict(cfg) else None
            if strict is not None:
                spec = {"name": "answer", "strict": True, "schema": strict}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            messages = _with_instruction(messages, schema_instruction(request.json_schema))
            if mode == "json_object":
                body["response_format"] = {"type": "json_object"}
    body["messages"] = messages
    return body


def wants_strict(cfg: OpenAIModelConfig | None) -> bool:
    setting = getattr(cfg, "strict", "off")
    if setting == "auto":
        base_url = str(getattr(cfg, "base_url", "")).rstrip("/")
        return base_url == "https://api.openai.com/v1"
    return setting == "on"


_QUOTED = re.compile(r"['\"`]([a-z_]+)['\"`]")


_REFUSAL_WORDS = (
    "unsupported",
    "not supported",
    "does not support",
    "unknown",
    "unrecognized",
    "not allowed",
    "extra inputs",
    "invalid",
    "requires",
    "cannot find field",
)
# How a message may name a field without its JSON name (vLLM: '"auto" tool choice requires').
_ALIASES = {
    "tools": ("tools", "tool choice", "tool_choice", "tool-call", "function calling"),
    "response_format": ("response_format", "json_schema", "json_object", "response format"),
}


def refused_field(status: int, text: str, body: dict[str, Any]) -> str | None:
    """The optional field a 400/422 refused, if it names one that was sent: by the error's
    `param` (OpenAI), else by the field quoted or named in a message that says it is refused
    (vLLM and Gemini give no param)."""
    if status not in (400, 422):
        return None
    answer = read_error(text)
    param, message = answer.param, answer.message
    if _too_large(param, message):
        return None  # a limit the endpoint takes, only not this big (stated_token_limit)
    sent = [f for f in OPTIONAL_FIELDS if f in body]
    if param in sent:
        return param
    if param.startswith("response_format") and "response_format" in body:
        return "response_format"
    lowered = message.lower()
    if not any(w in lowered for w in _REFUSAL_WORDS):
        return None
    named = [f for f in _QUOTED.findall(message) if f in sent]
    if named:
        return named[0]
    for f in sent:
        if any(alias in lowered for alias in _ALIASES.get(f, (f,))):
            return f
    return None


def _too_large(param: str, message: str) -> bool:
    """A completion-token limit refused for its size, not for being sent at all."""
    named = param in TOKEN_FIELDS or any(f in message for f in TOKEN_FIELDS)
    return named and bool(re.search(r"too (?:large|big|high)|at most|exceeds? ", message, re.I))


def step_down(record: EndpointRecord, refused: str) -> bool:
    """Adapt the record to a refusal; False when there is nothing left to drop."""
    if refused == "response_format":
        order = ["json_schema", "json_object", "prompt"]
        i = order.index(record.json_mode) if record.json_mode in order else 2
        if i >= 2:
            return False
        record.json_mode = order[i + 1]
    elif refused == "tools":  # e.g. vLLM without --enable-auto-tool-choice: text actions
        if not record.tools:
            return False
        record.tools = False
        record.refused = sorted({*record.refused, "tools"})
    elif refused == "grammar":
        if not record.grammar:
            return False
        record.grammar = False
    elif refused in record.refused:
        return False
    else:
        record.refused = sorted({*record.refused, refused})
    record.source = "learnt"
    return True
