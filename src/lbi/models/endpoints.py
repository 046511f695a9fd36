"""What one OpenAI-compatible endpoint supports, as `lbi models probe` found it (or as the
backend learnt from a refusal), stored per base_url + model next to the call cache.

The record is a small JSON file (`<cache dir>/endpoints.json`), read when a backend starts and
written by the probe and by a backend that had to step down (a refused parameter, a refused
`response_format`), so the next run starts from what the endpoint really does.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

FILE_NAME = "endpoints.json"
JSON_MODES = ("json_schema", "json_object", "prompt")
_LOCK = threading.Lock()

# OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 and their dated versions) refuse
# `max_tokens` (they take `max_completion_tokens`) and any temperature but the default.
# `gpt-5-chat-*` is a chat model. Documented at platform.openai.com (reasoning guide).
_REASONING = re.compile(r"^(?:[\w.-]+/)?(?:o\d(?:-|$)|gpt-5(?!-chat))", re.IGNORECASE)


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def is_local(base_url: str) -> bool:
    """A server on this machine: no key needed, and its calls cost nothing."""
    return (urlparse(base_url).hostname or "") in _LOCAL_HOSTS


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING.match(model))


@dataclass
class EndpointRecord:
    base_url: str
    model: str
    json_mode: str = "json_schema"  # json_schema | json_object | prompt
    tools: bool = True
    parallel_tools: bool = False
    grammar: bool = False
    refused: list[str] = field(default_factory=list)  # request fields the endpoint rejects
    context_length: int | None = None
    # The most completion tokens the endpoint takes, as its refusal of a larger limit said:
    # a request's limit is clamped to it.
    max_output_tokens: int | None = None
    thinks: bool = False  # its answers carried reasoning (lbi.models.thinking)
    source: str = "default"  # default | probe | learnt

    @property
    def key(self) -> str:
        return endpoint_key(self.base_url, self.model)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EndpointRecord:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        rec = cls(**known)
        if rec.json_mode not in JSON_MODES:
            rec.json_mode = "prompt"
        rec.refused = sorted({str(x) for x in rec.refused})
        return rec


def endpoint_key(base_url: str, model: str) -> str:
    return f"{base_url.rstrip('/')}|{model}"


def default_record(base_url: str, model: str) -> EndpointRecord:
    """Before any probe: optimistic, except what the provider documents for the model."""
    refused = ["max_tokens", "temperature"] if is_reasoning_model(model) else []
    return EndpointRecord(base_url=base_url, model=model, refused=refused)


class EndpointStore:
    """`endpoints.json` under a folder; whole-file rewrite through a temp file (atomic)."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / FILE_NAME

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, base_url: str, model: str) -> EndpointRecord | None:
        raw = self._read().get(endpoint_key(base_url, model))
        return EndpointRecord.from_json(raw) if isinstance(raw, dict) else None

    def put(self, record: EndpointRecord) -> None:
        with _LOCK:
            data = self._read()
            data[record.key] = record.to_json()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".endpoints-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
