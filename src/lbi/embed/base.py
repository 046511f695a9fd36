"""The embedding door: an `Embedder` protocol and spec strings -> embedders.

`minilm` (default): all-MiniLM-L6-v2 int8 ONNX, in-process, no torch.
`hash`: a deterministic hashing embedder shipped for tests (no model, no meaning beyond words).
`openai:MODEL`: any OpenAI-compatible `/embeddings` endpoint.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

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
_FACTORIES: dict[str, EmbedFactory] = {}
_LAZY = {
    "minilm": "lbi.embed.minilm",
    "hash": "lbi.embed.hashing",
    "openai": "lbi.embed.openai_embed",
}


def register_embedder(prefix: str) -> Callable[[EmbedFactory], EmbedFactory]:
    def deco(factory: EmbedFactory) -> EmbedFactory:
        _FACTORIES[prefix] = factory
        return factory

    return deco


def make_embedder(spec: str, config: Config) -> Embedder:
    prefix, _, arg = spec.partition(":")
    if prefix not in _FACTORIES and prefix in _LAZY:
        try:
            importlib.import_module(_LAZY[prefix])
        except ImportError as e:
            raise EmbedError(f"embedder {spec!r} needs a missing package ({e.name})") from None
    if prefix not in _FACTORIES:
        raise EmbedError(f"unknown embedder {spec!r}; known: {', '.join(sorted(_LAZY))}")
    return _FACTORIES[prefix](arg, config)
