"""Token counts for prompt budgets: the model's own tokenizer where known, else an estimate.

A backend that knows its tokenizer has a `count_tokens(text) -> int` method (the local GGUF
model reads its vocabulary from the file); `counter_for(model)` returns it, or the estimate.
Characters / 4 undercounts SmolLM2's tokens on accessibility trees by about 1.5x, so a budget
counted that way overfills the model's context.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

Counter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """About four characters a token (English prose and code under BPE tokenizers)."""
    return (len(text) + 3) // 4


def counter_for(model: Any) -> Counter:
    """The model's `count_tokens` if it has one (through proxies with `.door`/`.model`)."""
    for _ in range(4):
        count = getattr(model, "count_tokens", None)
        if callable(count):
            return count  # type: ignore[no-any-return]
        inner = getattr(model, "door", None) or getattr(model, "model", None)
        if inner is None:
            break
        model = inner
    return estimate_tokens


@lru_cache(maxsize=4)
def gguf_tokenizer(path: str) -> Any:
    """A `tokenizers.Tokenizer` built from a GGUF file's BPE vocabulary and merges (GPT-2 style
    byte-level BPE, as SmolLM2 uses); None when the file holds another kind of tokenizer."""
    import gguf
    from tokenizers import Tokenizer, models, pre_tokenizers

    reader = gguf.GGUFReader(path)

    def strings(name: str) -> list[str]:
        field = reader.fields.get(name)
        return [bytes(field.parts[i]).decode() for i in field.data] if field else []

    if strings("tokenizer.ggml.model") != ["gpt2"]:
        return None
    vocab = {tok: i for i, tok in enumerate(strings("tokenizer.ggml.tokens"))}
    merges = [(a, b) for a, _, b in (m.partition(" ") for m in strings("tokenizer.ggml.merges"))]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tok
