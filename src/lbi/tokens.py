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


# Chat-template tokens around each message, and around the whole conversation.
PER_MESSAGE = 4
MARGIN = 32
# Where tokens are only estimated (no tokenizer), a budget counts the estimate this much higher:
# it runs ~1.5x low on accessibility trees (above), ~1.2x low on code and markup.
ESTIMATE_SLACK = 1.5


def slack_estimate(text: str) -> int:
    """The estimate raised by `ESTIMATE_SLACK`: what a budget counts without a tokenizer."""
    return int(estimate_tokens(text) * ESTIMATE_SLACK)


def budget_counter(model: Any) -> Counter:
    """What a prompt budget counts with: the model's tokenizer, else the raised estimate."""
    count = counter_for(model)
    return slack_estimate if count is estimate_tokens else count


def prompt_tokens(messages: list[dict[str, Any]], count: Counter) -> int:
    """A chat prompt's tokens, template and margin included; an estimate is raised by the
    slack (so `count` may be `counter_for`'s or `budget_counter`'s)."""
    total = sum(count(str(m.get("content") or "")) + PER_MESSAGE for m in messages)
    if count is estimate_tokens:
        total = int(total * ESTIMATE_SLACK)
    return total + MARGIN


def clip_middle(text: str, n: int) -> str:
    """At most about `n` characters: the start and the end, with what was cut counted."""
    if len(text) <= n:
        return text
    head, tail = n - n // 3, n // 3
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


def fit_text(text: str, tokens: int, count: Counter) -> str:
    """`text` cut in the middle (`clip_middle`) until it counts at most `tokens`; at 200
    characters it stops, and the caller's own check refuses what still does not fit."""
    n, out = len(text), text
    while n > 200 and count(out) > tokens:
        n = max(200, n * 3 // 4)
        out = clip_middle(text, n)
    return out


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
