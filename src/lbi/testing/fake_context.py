"""The fake server's context size: what a provider does with a request longer than it.

A server started with `context=N` counts a request's tokens its own way (about 3.3 characters a
token, more than lbi's 4-character estimate, as real tokenizers count on code and markup) and,
when the prompt and the asked completion exceed N, answers as its provider does: OpenAI, vLLM,
Gemini and llama.cpp refuse with their own overflow body (`providers.overflow_answer`, which
states N); Ollama cuts the prompt silently and answers anyway (counted in `truncated`). Where the
provider states its context, the fake states N: vLLM's `max_model_len` and llama.cpp's
`meta.n_ctx` in `/v1/models`, Ollama's `num_ctx` in `/api/show`.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from lbi.testing.providers import Profile, overflow_answer

if TYPE_CHECKING:
    from lbi.testing.fake_openai import FakeOpenAIServer

CHARS_PER_TOKEN = 3.3
PER_MESSAGE = 4  # chat-template tokens around each message


def server_tokens(body: dict[str, Any]) -> int:
    """The request's prompt tokens as this server counts them."""
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else ""
        text = content if isinstance(content, str) else json.dumps(content)
        total += math.ceil(len(text or "") / CHARS_PER_TOKEN) + PER_MESSAGE
    if body.get("tools"):
        total += math.ceil(len(json.dumps(body["tools"])) / CHARS_PER_TOKEN)
    return total


def over_context(srv: FakeOpenAIServer, body: dict[str, Any]) -> tuple[int, Any] | None:
    """(status, body) of the overflow answer, or None when the request fits (or the provider
    cuts it silently)."""
    if srv.context is None:
        return None
    prompt = server_tokens(body)
    completion = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
    if prompt + completion <= srv.context:
        return None
    if srv.profile is not None and srv.profile.ollama_show is not None:
        srv.truncated += 1  # Ollama keeps the prompt's end and answers: nothing says so
        return None
    srv.overflows += 1
    return overflow_answer(srv.profile, srv.context, prompt, completion)


def stated_meta(profile: Profile | None, context: int | None) -> dict[str, Any]:
    """The profile's `/v1/models` fields, with the context it states set to `context`."""
    meta = json.loads(json.dumps(profile.models_meta)) if profile else {}
    if context is not None:
        if "max_model_len" in meta:
            meta["max_model_len"] = context
        if isinstance(meta.get("meta"), dict):
            meta["meta"]["n_ctx"] = context
    return meta


def ollama_show(profile: Profile, context: int | None) -> dict[str, Any]:
    """Ollama's `/api/show` answer, with `num_ctx` set to `context`."""
    show: dict[str, Any] = json.loads(json.dumps(profile.ollama_show))
    if context is not None:
        show["parameters"] = re.sub(
            r"^num_ctx\s+\d+", f"num_ctx {context}", str(show.get("parameters") or ""), flags=re.M
        )
    return show
