"""`hash`: a deterministic feature-hashing embedder, shipped as a test double.

No model and no load time: word unigrams and bigrams are hashed (blake2b, so the same text gives
the same vector in every process, unlike Python's salted `hash`) into 256 signed buckets and the
row is L2-normalised. Texts that share words score higher; it knows nothing about meaning.
"""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from lbi.embed.base import EmbedError, register_embedder

if TYPE_CHECKING:
    from lbi.config import Config

DEFAULT_DIM = 256
_WORD = re.compile(r"\w+", re.UNICODE)


def features(text: str) -> list[str]:
    """Lower-cased word unigrams and adjacent-word bigrams."""
    words = _WORD.findall(text.lower())
    if not words:  # a fixed feature, so that every row, even of an empty text, has norm 1
        return ["<empty>"]
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    # The low bit picks the sign, so collisions cancel out on average instead of piling up.
    return (value >> 1) % dim, 1.0 if value & 1 else -1.0


class HashingEmbedder:
    """Signed feature hashing of words and word pairs."""

    name = "hash"

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if dim < 1:
            raise EmbedError(f"hash embedder dimension must be positive, got {dim}")
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in features(text):
                index, sign = _bucket(feature, self.dim)
                out[row, index] += sign
        # Colliding features can cancel to all zeros; keep such a row zero rather than divide by 0.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@register_embedder("hash")
def make_hashing(arg: str, config: Config) -> HashingEmbedder:
    """`hash` (256 dimensions) or `hash:DIM`."""
    if not arg:
        return HashingEmbedder()
    try:
        return HashingEmbedder(int(arg))
    except ValueError:
        raise EmbedError(f"hash embedder takes an integer dimension, got 'hash:{arg}'") from None
