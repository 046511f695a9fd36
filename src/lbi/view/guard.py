"""Who may read a viewer: requests naming one of its own hosts, and off loopback only with the
token `lbi view` printed at start.

The host check stops DNS rebinding: a page on evil.example whose name is made to point at
127.0.0.1 reaches the viewer from the user's own browser, but the browser still sends
`Host: evil.example`, and a viewer that answers only its own names refuses it. (Starlette's
`TrustedHostMiddleware` does the same, but releases before 1.x cut `[::1]:8765` to `[` and
refused every IPv6 loopback request; this is the few lines it takes.) The token is for a viewer
other machines or users can reach: given once as `?token=`, it is kept as an HttpOnly cookie
and the URL is cleaned of it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from hmac import compare_digest

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_HOST = re.compile(r"(?P<name>[A-Za-z0-9.\-]+|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::\d{1,5})?")


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The Host names a viewer bound to `host` answers to; None: any name, for a viewer bound
    to every interface (its names are not known here; the token guards it)."""
    if host in WILDCARDS:
        return None
    return LOOPBACK_NAMES | {host.strip("[]").lower()}


def host_name(header: str) -> str | None:
    """The name in a Host header (`[::1]:8765` -> `::1`); None when it is not a host[:port]."""
    m = _HOST.fullmatch(header)
    return None if m is None else (m["ip6"] or m["name"]).lower()


class Guard:
    """ASGI middleware: a foreign Host is 400; without the token (when there is one), 401."""

    def __init__(self, app: ASGIApp, host: str, token: str | None) -> None:
        self.app = app
        self.hosts = allowed_hosts(host)
        self.token = token
        # Named after the token: two viewers on one machine (cookies ignore ports) keep theirs.
        digest = hashlib.sha256((token or "").encode()).hexdigest()[:8]
        self.cookie = f"lbi_view_{digest}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self.check(Request(scope))
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        name = host_name(request.headers.get("host", ""))
        if name is None or (self.hosts is not None and name not in self.hosts):
            return PlainTextResponse("Invalid host header", status_code=400)
        if self.token is None:
            return None
        given = request.query_params.get("token")
        if given is not None and _same(given, self.token):
            rest = request.url.remove_query_params("token")
            target = rest.path + (f"?{rest.query}" if rest.query else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
            return response
        if _same(request.cookies.get(self.cookie, ""), self.token):
            return None
        return PlainTextResponse(
            "This viewer needs its token: open the URL that `lbi view` printed.", status_code=401
        )


def _same(given: str, token: str) -> bool:
    return compare_digest(given.encode(), token.encode())
