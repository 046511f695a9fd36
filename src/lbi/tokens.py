"""Token counts for prompt budgets, where the model's own tokenizer is not at hand."""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """About four characters a token (English prose and code under BPE tokenizers)."""
    return (len(text) + 3) // 4
