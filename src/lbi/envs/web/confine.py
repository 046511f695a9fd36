"""Keep a browser context on one origin: every request is checked before it leaves Chromium.

Why not check the page's URL once an action ran: by then the request has reached whatever it
named, and `startswith(base)` is fooled by spellings (`http://127.0.0.1:80@127.0.0.1:9/`, a port
that merely begins with the site's, `HTTP://`). So the rule is applied three times, each time
on the parsed origin (scheme, host, port), never on the text:
- `allows(url)` is the rule: http(s) only, host and port as Chromium canonicalises them, no
  userinfo, backslash or control characters (where URL parsers disagree about the host);
- `goto()` is checked before the action runs (PageSession's guard), so `javascript:`,
  `file:` and `data:` URLs never start;
- `install(context)` routes every request the context shows Playwright (navigations, frames,
  subresources, fetch/XHR, beacons, workers) through the rule and aborts the rest. It does not
  see redirect hops or WebSockets (Playwright 1.44; tests/test_confinement_web.py reached the
  other service both ways without the next layer), so `context_options()` also gives the
  context a proxy that refuses every connection, with only the site's host:port bypassing it:
  whatever the route misses fails inside Chromium's network stack. Service workers, whose
  requests bypass the route, are blocked.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from lbi.envs.base import EnvError

Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}
_C0_AND_SPACE = "".join(map(chr, range(33)))  # what the WHATWG parser strips around a URL
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_REFUSER: socket.socket | None = None  # bound, never listening: every connection is refused


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL as the browser would open it; None otherwise."""
    url = url.strip(_C0_AND_SPACE)
    if "\\" in url or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # `127.0.0.1:80.evil`, a port over 65535
        return None
    host = _canonical_host(parts.hostname or "")
    return (scheme, host, port) if host else None


def _canonical_host(host: str) -> str:
    """Lowercase; IPv6 compressed; IPv4 in any form Chromium accepts (127.1, 0x7f000001)."""
    host = host.lower()
    if ":" in host:
        with contextlib.suppress(ValueError):
            return ipaddress.IPv6Address(host).compressed
        return ""
    labels = host.split(".")
    last = labels[-1] or (labels[-2] if len(labels) > 1 else "")
    if _NUMERIC_LABEL.fullmatch(last):  # a host ending in a number is an IPv4 address
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return ""
    return host


class Confinement:
    """One origin, and the checks that keep a context on it (see the module docstring)."""

    def __init__(self, url: str) -> None:
        found = origin(url)
        if found is None:
            raise EnvError(
                f"site: url must be an http(s):// address with no user part, got {url!r}"
            )
        self.origin = found
        scheme, host, port = found
        self.netloc = f"{'[' + host + ']' if ':' in host else host}:{port}"
        self.base = f"{scheme}://{self.netloc}"
        self.blocked: list[str] = []  # requests aborted since the last `take_blocked()`

    def allows(self, url: str) -> bool:
        return origin(str(url)) == self.origin

    def refusal(self, url: str) -> str:
        """'' when `url` may be opened; otherwise the one line the agent is shown."""
        if self.allows(url):
            return ""
        return f"only pages under {self.base} may be opened; refused {str(url)[:120]!r}"

    def take_blocked(self) -> list[str]:
        out, self.blocked = self.blocked, []
        return out

    def context_options(self) -> dict[str, Any]:
        return {
            "proxy": {"server": f"http://127.0.0.1:{_refuser_port()}", "bypass": self.netloc},
            "service_workers": "block",  # a service worker's requests bypass the route
        }

    def install(self, context: Any) -> None:
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if self.allows(url):
            route.continue_()
        else:
            self.blocked.append(url[:200])
            route.abort("blockedbyclient")


def _refuser_port() -> int:
    """A local port we hold without listening, so nothing else can answer on it."""
    global _REFUSER
    if _REFUSER is None:
        _REFUSER = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _REFUSER.bind(("127.0.0.1", 0))
    return int(_REFUSER.getsockname()[1])
