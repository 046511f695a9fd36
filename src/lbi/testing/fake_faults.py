"""The fake OpenAI server's faults: which request gets one, and the answer each fault is.

Three ways to pick the failing requests (`FakeOpenAIServer` holds the settings):
- `faults`: a script, one fault per request in arrival order (`srv.faults.extend(["429"])`);
- `fault_ratio`: each request fails at random with a seeded share (`{"503": 0.1}`);
- `sticky`: a share of *distinct requests* fails every time it is sent, chosen by a hash of
  the request's messages (`{"500": 0.2}`): an error that outlasts the client's retries, the
  same whatever the order or concurrency of the calls. Clearing `sticky` is the endpoint
  recovering; a rerun then gets answers for exactly the requests that failed. A fault named
  `NAME@json` strikes only structured requests (with a `response_format`): an agent's act
  call that overflows is sent again smaller (lbi.agents.fit), a new request that passes.

Faults: 429 (Retry-After, or Gemini's `retryDelay` in the body for a profile without the
header), 500, 503, hang (sleeps `hang_s`), drop (closes the socket), malformed (a 200 with a
truncated JSON body), 401, 404, overflow (the profile's own context-overflow answer), quota
(OpenAI's `insufficient_quota` 429).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lbi.testing.providers import overflow_answer

if TYPE_CHECKING:
    from lbi.testing.fake_openai import FakeOpenAIServer

FAULTS = (
    "429",
    "500",
    "503",
    "hang",
    "drop",
    "malformed",
    "401",
    "404",
    "overflow",
    "quota",
)


def sticky_fault(body: dict[str, Any], shares: dict[str, float], salt: str = "") -> str | None:
    """The fault this request always gets under `shares` (fault -> share of distinct requests)."""
    if not shares:
        return None
    blob = json.dumps([salt, body.get("messages")], sort_keys=True, ensure_ascii=False)
    point = int(hashlib.sha256(blob.encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for fault, share in shares.items():
        edge += share
        if point < edge:
            name, _, scope = fault.partition("@")
            return name if scope != "json" or body.get("response_format") else None
    return None


def error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _rate_limited(srv: FakeOpenAIServer) -> web.Response:
    profile = srv.profile
    if profile is None or profile.retry_after:
        headers = {"Retry-After": f"{srv.retry_after:g}"}
        return error(429, "rate limit reached, slow down", "rate_limit_exceeded", headers)
    if profile.error_shape == "list":  # Gemini: the wait is in the body, as RetryInfo
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                 "retryDelay": f"{srv.retry_after:g}s"}  # fmt: skip
        inner = {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                 "status": "RESOURCE_EXHAUSTED", "details": [retry]}  # fmt: skip
        return web.json_response([{"error": inner}], status=429)
    return error(429, "rate limit reached, slow down", "rate_limit_exceeded")


async def respond(srv: FakeOpenAIServer, fault: str, request: web.Request) -> web.StreamResponse:
    """The answer `fault` is, for `srv`'s profile."""
    srv.faults_served[fault] += 1
    if fault == "429":
        return _rate_limited(srv)
    if fault in ("500", "503"):
        return error(int(fault), "the server had an error", "server_error")
    if fault == "401":
        return error(401, "Incorrect API key provided.", "invalid_api_key")
    if fault == "404":
        return error(404, "The model does not exist.", "model_not_found")
    if fault == "quota":
        message = "You exceeded your current quota, please check your plan and billing details."
        return error(429, message, "insufficient_quota")
    if fault == "overflow":
        status, body = overflow_answer(srv.profile)
        return web.json_response(body, status=status)
    if fault == "hang":
        await asyncio.sleep(srv.hang_s)
        return error(504, "hung", "timeout")
    if fault == "drop":
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never written: the socket is already gone
    if fault == "malformed":
        return web.Response(text='{"id": "x", "choices": [{"mess', content_type="application/json")
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
