"""Text and number helpers: word counts, frequent words, palindromes, clamping, medians."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased, in order."""
    return [w.lower() for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    """How many words `text` has."""
    return len(words(text))


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The `n` most frequent words with their counts; ties go to the alphabetically first word."""
    counts = Counter(words(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:n]


def is_palindrome(text: str) -> bool:
    """True when the letters and digits of `text` read the same both ways, ignoring case."""
    chars = [c.lower() for c in text if c.isalnum()]
    return chars == chars[::-1]


def clamp(value: float, low: float, high: float) -> float:
    """`value` moved into the closed interval [low, high]."""
    if low > high:
        raise ValueError("low must not exceed high")
    if value < low:
        return low
    if value > high:
        return high
    return value


def median(values: list[float]) -> float:
    """The middle value; for an even count, the mean of the two middle values."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def chunks(items: list[str], size: int) -> list[list[str]]:
    """`items` in consecutive lists of `size` (the last may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]
