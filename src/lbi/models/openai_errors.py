"""Reading an OpenAI-compatible endpoint's error answer: its shape, its words, its meaning.

The shapes: OpenAI and llama.cpp send `{"error": {"message", "type", "param", "code"}}`,
Gemini a list of `{"error": {"code", "message", "status", "details"}}`, vLLM a flat
`{"object": "error", "message", ...}`. The meanings read here, each with what lbi does:

- a context overflow (OpenAI `context_length_exceeded`, vLLM "maximum context length is N
  tokens", llama.cpp `exceed_context_size_error`, sent as a 500 by older builds): this request
  cannot succeed as it is, so it is not retried;
- an exhausted quota (OpenAI `insufficient_quota`, a 429): no request will succeed until the
  account is topped up, so the run stops with one line instead of retrying;
- a retry delay in the body (Gemini's `RetryInfo.retryDelay`, "37s"), when no header gives one;
- a stated maximum for the completion-token limit ("max_tokens is too large: 100000. This model
  supports at most 16384 completion tokens"): the limit is clamped to it, not dropped.

Pure functions of the status and the body text, so each provider's shape is unit-tested.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any

TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True)
class ErrorAnswer:
    message: str  # the server's own words (the whole body when it is not JSON)
    param: str = ""  # the request field it names (OpenAI only)
    code: str = ""  # code, type and status joined, lowercase: "insufficient_quota ..."
    retry_delay: float | None = None  # seconds, from Gemini's RetryInfo


def read_error(text: str) -> ErrorAnswer:
    """The parts of an error body in any of the shapes above; the raw text when not JSON."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return ErrorAnswer(message=text.strip())
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]
    elif isinstance(data, dict) and isinstance(data.get("error"), str):
        data = {"message": data["error"]}
    if not isinstance(data, dict):
        return ErrorAnswer(message=text.strip())
    codes = " ".join(str(data.get(k) or "") for k in ("code", "type", "status")).lower()
    return ErrorAnswer(
        message=str(data.get("message") or text).strip(),
        param=str(data.get("param") or ""),
        code=codes.strip(),
        retry_delay=_retry_delay(data.get("details")),
    )


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _retry_delay(details: Any) -> float | None:
    """Gemini: `details: [{"@type": ".../google.rpc.RetryInfo", "retryDelay": "37s"}]`."""
    for item in details if isinstance(details, list) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(delay or ""))
        if found:
            return float(found.group(1))
    return None


_OVERFLOW = re.compile(
    r"context[_ ]length[_ ]exceeded|exceed_context_size|maximum context length"
    r"|exceeds? the (?:available )?context|context (?:window|length|size) (?:is )?exceeded"
    r"|exceeds the maximum number of tokens"
    r"|prompt is too long|input is too long|reduce the length of the (?:messages|prompt)",
    re.IGNORECASE,
)


def is_context_overflow(status: int, answer: ErrorAnswer) -> bool:
    """The prompt and the answer's budget do not fit the model's context (400, 413, or a 500
    from older llama.cpp builds)."""
    if status not in (400, 413, 422, 500):
        return False
    return bool(_OVERFLOW.search(answer.code) or _OVERFLOW.search(answer.message))


_STATED_CONTEXT = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # OpenAI, vLLM
    re.compile(r"context (?:size|window|length)(?: is)?[ :(]+(\d+)", re.IGNORECASE),
    re.compile(r"maximum number of tokens allowed \((\d+)\)", re.IGNORECASE),  # Gemini
)


def stated_context(text: str) -> int | None:
    """The context size an overflow answer states: llama.cpp's `n_ctx` field, or the number in
    OpenAI's and vLLM's "maximum context length is N tokens"; None when it states none."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    inner = data.get("error") if isinstance(data, dict) else None
    for where in (inner, data):
        value = where.get("n_ctx") if isinstance(where, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    message = read_error(text).message
    for pattern in _STATED_CONTEXT:
        found = pattern.search(message)
        if found and int(found.group(1)) > 0:
            return int(found.group(1))
    return None


def is_quota_exhausted(status: int, answer: ErrorAnswer) -> bool:
    """OpenAI's `insufficient_quota` 429: billing, not a rate limit (no wait will help)."""
    return status == 429 and "insufficient_quota" in answer.code


_STATED_MAX = (
    re.compile(r"at most (\d+)", re.IGNORECASE),
    re.compile(r"> ?(\d+), which is the maximum", re.IGNORECASE),
    re.compile(r"less than or equal to (\d+)", re.IGNORECASE),
    re.compile(r"<= ?(\d+)"),
    re.compile(r"maximum(?: allowed)?(?: number of)?(?: output| completion)? tokens?(?: is| of)? (\d+)", re.IGNORECASE),
)  # fmt: skip


def stated_token_limit(status: int, answer: ErrorAnswer, body: dict[str, Any]) -> int | None:
    """The most completion tokens the endpoint says it takes, when it refused the request's
    completion-token limit as too large (and states a smaller one); else None."""
    if status not in (400, 422):
        return None
    field = next((f for f in TOKEN_FIELDS if f in body), None)
    if field is None or is_context_overflow(status, answer):
        return None
    message = answer.message
    if answer.param not in TOKEN_FIELDS and not any(f in message for f in TOKEN_FIELDS):
        return None
    sent = body[field]
    for pattern in _STATED_MAX:
        found = pattern.search(message)
        if found and 0 < int(found.group(1)) < sent:
            return int(found.group(1))
    return None
