"""Provider profiles for the fake OpenAI server: how the endpoints users bring behave.

Each profile says which request fields the endpoint refuses (and with which error body), whether
it honours `response_format` json_schema / json_object or ignores it, whether it returns tool
calls (several per answer or one), whether it takes a GBNF grammar, what its usage block holds,
how its errors are shaped, whether a 429 carries Retry-After, and what `GET /models` states.

`source` says where each fact comes from. "docs" = the provider's own documentation (OpenAI's
reasoning guide and error reference, Anthropic's "OpenAI SDK compatibility" page, Google's
"OpenAI compatibility" page, Ollama's "OpenAI compatibility" page, vLLM's tool-calling docs,
llama.cpp's server README); "observed" = seen from the real server (llama.cpp through
xllamacpp, here); "assumed" = not documented, chosen to exercise lbi's handling. The fake does
not claim to be these services: it reproduces the documented surface lbi depends on.

    with FakeOpenAIServer(profile=PROFILES["openai-reasoning"]) as srv: ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lbi.testing.fake_thinking import thinking_text, write_thinking


@dataclass(frozen=True)
class Profile:
    name: str
    model: str  # a model name of that provider's kind
    # field -> error message of the 400 the endpoint answers when the field is sent
    refuses: dict[str, str] = field(default_factory=dict)
    json_schema: bool = True  # constrains output to response_format's json_schema
    json_object: bool = True  # honours response_format {"type": "json_object"}
    tools: bool = True  # returns structured tool calls
    parallel_tools: bool = True  # several tool calls in one answer when asked for several
    grammar: bool = False  # llama.cpp's `grammar` field
    reasoning_tokens: int = 0  # hidden reasoning spent per answer (inside completion_tokens)
    # Reasoning written out before every answer (lbi.testing.fake_thinking), this many tokens:
    # inside `<think>` in the content, or in the field `think_field` names.
    think_tokens: int = 0
    think_field: str = ""
    usage_details: bool = False  # usage.completion_tokens_details.reasoning_tokens
    error_shape: str = "openai"  # openai {"error": {...}} | list [{"error": {...}}] | flat
    retry_after: bool = True  # 429 answers carry Retry-After
    models_meta: dict[str, Any] = field(default_factory=dict)  # extra fields of GET /models
    # A completion-token limit above this is refused as too large, the maximum stated (OpenAI).
    max_output_tokens: int | None = None
    remote: bool = True  # billed per token (a real deployment would need `prices:`)
    # Ollama's native API beside the OpenAI one: `POST /api/show` answers this (and
    # `GET /api/version` answers), None = no native API.
    ollama_show: dict[str, Any] | None = None
    source: dict[str, str] = field(default_factory=dict)


def _unsupported(param: str, hint: str = "") -> str:
    return f"Unsupported parameter: '{param}' is not supported with this model.{hint}"


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            name="openai-chat",
            model="gpt-4o-mini",
            usage_details=True,
            source={"all": "docs (platform.openai.com API reference, structured outputs)"},
        ),
        Profile(
            name="openai-reasoning",
            model="o4-mini",
            refuses={
                "max_tokens": _unsupported("max_tokens", " Use 'max_completion_tokens' instead."),
                "temperature": "Unsupported value: 'temperature' does not support 0.0 with this "
                "model. Only the default (1) value is supported.",
            },
            reasoning_tokens=64,
            usage_details=True,
            source={
                "refusals, reasoning_tokens, reasoning_effort": "docs (OpenAI reasoning guide)",
                "error bodies": "docs (param/code fields: unsupported_parameter/_value)",
            },
        ),
        Profile(
            name="anthropic",
            model="claude-sonnet-4-5",
            json_schema=False,  # "response_format: Ignored"
            json_object=False,
            refuses={},  # seed, reasoning_effort, logprobs ... are ignored, not refused
            source={
                "response_format ignored, seed ignored, temperature 0..1, parallel tools": "docs "
                "(Anthropic OpenAI SDK compatibility page)",
                "error shape, Retry-After": "docs (Anthropic rate limits: retry-after header)",
            },
        ),
        Profile(
            name="gemini",
            model="gemini-2.5-flash",
            error_shape="list",
            retry_after=False,
            source={
                "json_schema, tools, reasoning_effort": "docs (Gemini OpenAI compatibility)",
                "errors as a JSON list, no Retry-After header": "observed in the wild; assumed",
            },
        ),
        Profile(
            name="thinking",
            model="qwen3-8b",
            think_tokens=800,
            retry_after=False,
            remote=False,
            source={
                "<think> blocks in the content": "docs (Qwen3 model card; llama.cpp and vLLM "
                "without a reasoning parser pass them through)",
                "800 tokens of thinking per answer": "assumed (short for Qwen3, longer than "
                "lbi's act, query and task limits)",
            },
        ),
        Profile(
            name="thinking-field",
            model="my-reasoner",  # a name lbi cannot tell thinks: learnt from its answers
            think_tokens=800,
            think_field="reasoning_content",
            error_shape="flat",
            remote=False,
            source={
                "reasoning_content beside the content": "docs (vLLM --reasoning-parser, "
                "DeepSeek API)",
            },
        ),
        Profile(
            name="vllm",
            model="Qwen/Qwen2.5-7B-Instruct",
            tools=False,
            refuses={
                "tools": '"auto" tool choice requires --enable-auto-tool-choice and '
                "--tool-call-parser to be set",
            },
            error_shape="flat",
            models_meta={"max_model_len": 32768},
            remote=False,
            source={
                "json_schema (guided decoding), /models max_model_len": "docs (vLLM)",
                "tools refused without --enable-auto-tool-choice": "docs (vLLM tool calling)",
                "flat error body": "docs (vLLM ErrorResponse)",
            },
        ),
        Profile(
            name="ollama",
            model="llama3.2",
            json_schema=True,
            parallel_tools=False,
            retry_after=False,
            remote=False,
            # A Modelfile that sets num_ctx states it in `parameters`; the trained length is in
            # model_info (`<architecture>.context_length`).
            ollama_show={
                "parameters": 'num_ctx                        8192\nstop                           "<|eot_id|>"',
                "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            },
            source={
                "response_format, tools, seed, stop, max_tokens": "docs (Ollama OpenAI compat)",
                "max_completion_tokens not listed (ignored)": "docs; handling assumed",
                "/api/show parameters and model_info, /api/version": "docs (Ollama API)",
            },
        ),
        Profile(
            name="llamacpp",
            model="smollm2",
            grammar=True,
            tools=False,  # only with --jinja; the default server answers in text
            parallel_tools=False,
            retry_after=False,
            # As xllamacpp lists it: by the GGUF's path whatever name is asked for; a server
            # started with -c 4096 serves 4096 tokens of a model trained on 8192.
            models_meta={
                "id": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                "owned_by": "llamacpp",
                "meta": {"n_ctx": 4096, "n_ctx_train": 8192},
            },
            remote=False,
            source={
                "json_schema, grammar, /models id and meta.n_ctx": "docs (llama.cpp server README)"
                " and observed (xllamacpp)",
                "tools only with --jinja": "docs (llama.cpp function calling)",
            },
        ),
    ]
}


def refusal(profile: Profile, body: dict[str, Any]) -> str | None:
    """The field of `body` this profile refuses, if any (first in the profile's order)."""
    for name in profile.refuses:
        if name in body:
            return name
    return None


def error_body(profile: Profile, status: int, message: str, param: str | None) -> Any:
    """OpenAI names the refused field in `param`; vLLM and Gemini only in the message."""
    if profile.error_shape == "flat":  # vLLM's ErrorResponse
        return {"object": "error", "message": message, "type": "BadRequestError",
                "param": None, "code": status}  # fmt: skip
    if profile.error_shape == "list":  # Gemini
        inner = {"code": status, "message": message, "status": "INVALID_ARGUMENT"}
        return [{"error": inner}]
    code = "unsupported_parameter" if param else "invalid_request_error"
    return {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": code}}  # fmt: skip


def overflow_answer(
    profile: Profile | None, context: int = 4096, prompt: int = 4600, completion: int = 400
) -> tuple[int, Any]:
    """(status, body) of the profile's answer to a prompt of `prompt` tokens asking for
    `completion` more, longer than its `context`: each provider's documented wording
    (llama.cpp's type is `exceed_context_size_error`; vLLM says how the request split between
    messages and completion; Gemini lists the error)."""
    shape = profile.error_shape if profile is not None else "openai"
    name = profile.name if profile is not None else ""
    total = prompt + completion
    if name == "llamacpp":
        return 400, {"error": {"code": 400, "type": "exceed_context_size_error",
                               "message": "the request exceeds the available context size, "
                               "try increasing it", "n_prompt_tokens": prompt, "n_ctx": context}}  # fmt: skip
    if shape == "flat":
        message = (f"This model's maximum context length is {context} tokens. However, you "
                   f"requested {total} tokens ({prompt} in the messages, {completion} in the "
                   "completion). Please reduce the length of the messages or completion.")  # fmt: skip
        return 400, error_body(profile, 400, message, None) if profile else {}
    if shape == "list":
        message = (
            f"The input token count ({prompt}) exceeds the maximum number of tokens allowed "
            f"({context})."
        )
        return 400, [{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]
    message = (f"This model's maximum context length is {context} tokens. However, your "
               f"messages resulted in {total} tokens. Please reduce the length of the messages.")  # fmt: skip
    return 400, {"error": {"message": message, "type": "invalid_request_error",
                           "param": "messages", "code": "context_length_exceeded"}}  # fmt: skip


def too_large(profile: Profile, body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 for a completion-token limit above the model's maximum, or None."""
    cap = profile.max_output_tokens
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    sent = body.get(field)
    if cap is None or not isinstance(sent, int) or sent <= cap:
        return None
    message = (f"{field} is too large: {sent}. This model supports at most {cap} completion "
               f"tokens, whereas you provided {sent}.")  # fmt: skip
    return {"error": {"message": message, "type": "invalid_request_error", "param": field,
                      "code": "invalid_value"}}  # fmt: skip


_SCHEMA_MARK = "matching this JSON schema:\n"


def prompt_schema(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema lbi put in the prompt (JSON mode, prompt+repair), for a fake model that
    follows it; the last one given wins (a repair turn repeats it)."""
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, str):
            continue
        at = content.rfind(_SCHEMA_MARK)
        if at < 0:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(content[at + len(_SCHEMA_MARK) :])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def shape_answer(profile: Profile | None, body: dict[str, Any], answer: dict[str, Any]) -> Any:
    """The profile's usage block, hidden reasoning and token-limit cut applied to an answer."""
    if profile is None:
        return answer
    choice = answer["choices"][0]
    message = choice["message"]
    usage = answer["usage"]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    visible = usage["completion_tokens"]
    reasoning = profile.reasoning_tokens + profile.think_tokens
    thought = thinking_text(profile.think_tokens)
    spent = reasoning + visible
    if isinstance(limit, int) and spent > limit:
        # Cut at the limit: reasoning first, so a small limit leaves no visible answer at all
        # (OpenAI's reasoning guide: finish_reason "length", empty content).
        room = max(0, limit - profile.reasoning_tokens)
        thought = thought[: room * 4]
        room = max(0, room - profile.think_tokens)
        text = message.get("content") or ""
        message["content"] = text[: room * 4]
        message.pop("tool_calls", None)
        choice["finish_reason"] = "length"
        spent = limit
    if profile.think_tokens:
        finished = len(thought) == profile.think_tokens * 4
        write_thinking(message, thought, finished, profile.think_field)
    usage["completion_tokens"] = spent
    usage["total_tokens"] = usage["prompt_tokens"] + spent
    if profile.usage_details:
        usage["completion_tokens_details"] = {"reasoning_tokens": min(reasoning, spent)}
    answer["model"] = profile.model
    return answer
