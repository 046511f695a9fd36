"""Prompts are data: one Jinja2 template per purpose, rendered by one function.

The parser for each prompt's answer lives next to the code that sends it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lbi", "prompts"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **context: Any) -> str:
    """Render `prompts/<name>.j2`; a missing variable is an error, not a blank."""
    return _env().get_template(f"{name}.j2").render(**context).strip()


def fence(texts: Sequence[str]) -> str:
    """A boundary for untrusted texts set side by side in one prompt (examples, windows).

    Derived from the texts themselves, so the same batch always gives the same prompt (the call
    cache keys on it, and a resumed run must hit) while no text could have been written to hold
    it: it is a hash of that very text. Should one hold it anyway, the next one is taken.
    """
    seed = hashlib.sha256("\x00".join(texts).encode()).digest()
    n = 0
    tag = _candidate(seed, n)
    while any(tag in t for t in texts):
        n += 1
        tag = _candidate(seed, n)
    return tag


def _candidate(seed: bytes, n: int) -> str:
    """The `n`-th boundary for a batch whose hash is `seed`: 16 hex digits (64 bits)."""
    return hashlib.sha256(seed + n.to_bytes(4, "big")).hexdigest()[:16]
