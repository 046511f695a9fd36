"""What an OpenAI-compatible server says it serves: the model `GET /models` lists (its weights'
identity, for the call cache's key) and the context it runs with (for fitting prompts).

vLLM states `max_model_len` and the weights' path (`root`); llama.cpp lists its one model by its
GGUF's path with `meta` (`n_ctx`, the context it runs with, `n_params`, `size`); Ollama states
nothing there and silently cuts longer prompts, so its `num_ctx` is read from `/api/show` (else
its 4,096 default). Each read is one GET with a 10 s limit; a server that does not answer
states nothing (None), and lbi goes on without.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

# Ollama's context when neither the model's Modelfile nor the request sets `num_ctx` (its
# FAQ; `OLLAMA_CONTEXT_LENGTH` changes it for the server, and lbi cannot see that variable).
OLLAMA_DEFAULT_CONTEXT = 4096
# Fields of a listed model that change from one request to the next (vLLM and llama.cpp stamp
# `created` with the time of the request), so they are no part of what the server serves.
_VOLATILE = frozenset({"created", "permission", "object"})


async def listed_model(model: Any) -> dict[str, Any] | None:
    """The `/models` entry of `model.model` (llama.cpp's one model under any name), or None."""
    base_url = getattr(model, "base_url", None)
    if not base_url:
        return None
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
    found = named or (listed if len(listed) == 1 else [])
    return found[0] if found else None


def served_identity(item: dict[str, Any]) -> dict[str, Any]:
    """What of a listed model identifies the weights behind it (all but the volatile fields)."""
    return {k: v for k, v in sorted(item.items()) if k not in _VOLATILE}


def item_context(item: dict[str, Any] | None) -> int | None:
    """The context a listed model states: vLLM's `max_model_len`, llama.cpp's `meta.n_ctx`
    (else `meta.n_ctx_train`), `context_length`/`context_window` elsewhere."""
    if not item:
        return None
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


async def context_length(model: Any, item: dict[str, Any] | None = None) -> int | None:
    """The context the server states for the model (`item`: its `/models` entry, when already
    read); for Ollama, `num_ctx` from `/api/show`, else its default; None when nothing says."""
    base_url = getattr(model, "base_url", None)
    if not base_url:
        return None
    stated = item_context(item if item is not None else await listed_model(model))
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
