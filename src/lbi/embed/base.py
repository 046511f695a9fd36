"""The embedding door: an `Embedder` protocol and spec strings -> embedders.

`minilm` (default): all-MiniLM-L6-v2 int8 ONNX, in-process, no torch.
`hash`: a deterministic hashing embedder shipped for tests (no model, no meaning beyond words).
`openai:MODEL`: any OpenAI-compatible `/embeddings` endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from lbi.registry import Registry

if TYPE_CHECKING:
    from lbi.config import Config


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), each row L2-normalised."""
        ...


class EmbedError(RuntimeError):
    pass


EmbedFactory = Callable[[str, "Config"], Embedder]

EMBEDDERS: Registry[EmbedFactory] = Registry(
    kind="embedder",
    group="lbi.embedders",
    error=EmbedError,
    builtins={
        "minilm": "lbi.embed.minilm",
        "hash": "lbi.embed.hashing",
        "openai": "lbi.embed.openai_embed",
    },
)


def register_embedder(prefix: str) -> Callable[[EmbedFactory], EmbedFactory]:
    return EMBEDDERS.register(prefix)


def make_embedder(spec: str, config: Config) -> Embedder:
    prefix, _, arg = spec.partition(":")
    if prefix in config.endpoints:  # `NAME:MODEL` on a named endpoint (config `endpoints:`)
        from lbi.embed.openai_embed import endpoint_embedder

        if not arg:
            raise EmbedError(f"embedder {spec!r} needs a model name after {prefix}:")
        return endpoint_embedder(arg, config.endpoints[prefix], config, prefix)
    embedder: Embedder = EMBEDDERS.make(spec, config)
    return embedder
