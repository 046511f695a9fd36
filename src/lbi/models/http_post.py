"""A lean JSON POST over aiohttp: the `openai:` backend's default transport.

Why not the `openai` SDK on the hot path: every SDK call builds an httpx request (URL parse,
header normalisation, option models) and, on its aiohttp transport, converts it to an aiohttp
request and the answer back. At concurrency 32 (`bench/model_door.py`) the door spends about
1 ms of client CPU per call over the SDK and about 0.35 ms over this transport; on two cores
the difference is most of the door's distance from the ideal wall time. vLLM's own serving
benchmark client talks to OpenAI-compatible servers the same way. The SDK stays one setting
away (`models.openai.transport=sdk`).

This module only moves bytes: status codes and connection failures come back as
`HTTPStatus` / `ConnectionFailed`, and the backend turns them into lbi's error types. The
API key lives in the session's default headers and in no exception raised here.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from lbi import __version__


@dataclass
class HTTPStatus(Exception):
    """A non-2xx answer: its status, headers and (truncated) body text."""

    status: int
    headers: dict[str, str]
    text: str

    def message(self) -> str:
        """The server's own error message when the body is OpenAI-shaped JSON."""
        try:
            error = json.loads(self.text).get("error")
        except (ValueError, AttributeError):
            return self.text
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error or self.text)


class ConnectionFailed(Exception):
    """No answer: refused, dropped, reset or timed out at the socket."""


def env_proxy(url: str) -> str | None:
    """The proxy that HTTP(S)_PROXY / NO_PROXY name for `url`, as the SDK's httpx would use.

    Looked up once: aiohttp's own `trust_env` does it per request, in a worker thread.
    """
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class JSONPoster:
    """POST a JSON body to `base_url + path`, return the response bytes.

    The session is made on first use, inside the running event loop it then belongs to (as
    the SDK's client does, a backend serves one loop).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float,
        max_connections: int,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {
            **(headers or {}),
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"lbi/{__version__}",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(10.0, timeout_s))
        self._max_connections = max_connections
        self._proxy = env_proxy(self.base_url)
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=self._headers,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
                raise_for_status=False,
            )
        return self._session

    async def post(self, path: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        session = self._open_session()
        try:
            async with session.post(self.base_url + path, data=data, proxy=self._proxy) as response:
                content = await response.read()
                if response.status >= 300:
                    raise HTTPStatus(
                        response.status,
                        {k.lower(): v for k, v in response.headers.items()},
                        content[:2000].decode("utf-8", "replace"),
                    )
                return content
        except (aiohttp.ClientError, TimeoutError) as e:
            # aiohttp's socket timeouts subclass TimeoutError: report them here, so the door's
            # own per-call timeout (also a TimeoutError) keeps its meaning.
            reason = str(e) or type(e).__name__
            if isinstance(e, TimeoutError):
                reason = f"timed out ({reason})"
            raise ConnectionFailed(reason) from None

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            # RuntimeError: its loop is gone, so there is nothing left to release there.
            with contextlib.suppress(RuntimeError):
                await self._session.close()
        self._session = None
