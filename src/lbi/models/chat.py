"""Chat-message helpers shared by the in-process backends (llama.cpp, transformers) and training."""

from __future__ import annotations

from typing import Any

DEFAULT_SYSTEM = "You are a helpful assistant."


def with_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Always send a system turn: SmolLM2 rambles under the template's built-in persona."""
    if any(m.get("role") == "system" for m in messages):
        return list(messages)
    return [{"role": "system", "content": DEFAULT_SYSTEM}, *messages]
