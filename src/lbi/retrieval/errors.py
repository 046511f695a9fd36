"""The one error the retrieval package raises, so callers can catch retrieval problems apart."""

from __future__ import annotations


class RetrievalError(RuntimeError):
    """A retrieval index cannot be built, loaded or searched; the message is one readable line."""
