"""Confinement of the `site` environment (issue 31, findings 4 and 9), attacked through its
public `reset()`/`step()`.

A site under test runs on 127.0.0.1 at a 4-digit port P and a second local service (the thing an
agent or a page must never reach) at 10*P+d: the old `startswith(base)` check took that service
for the site. The second service counts every hit; each attack asserts it got none, that no
`file://` content reached an observation and that a `javascript:` URL never ran. A 50 MB page
must cost one bounded step, and the observation must say it was cut; so must a page whose
script never yields.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lbi.envs.base import EnvError
from lbi.envs.web.site import SiteEnv
from lbi.types import Task

SECRET = "SECRET-OF-THE-OTHER-SERVICE"
BIG_MB = 50
TASK = Task(env="site", name="look", instruction="Look around.")


@dataclass
class Servers:
    site: ThreadingHTTPServer
    other: ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)  # paths the other service was asked for

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.site.server_port}"

    @property
    def other_url(self) -> str:
        return f"http://127.0.0.1:{self.other.server_port}"


def _pages(s: Servers) -> dict[str, str]:
    o, port = s.other_url, s.other.server_port
    return {
        "/": "<title>Home</title><h1>Home</h1><a href='/img'>img</a><a href='/redirect'>r</a>"
        f"<a href='http://127.0.0.1:{s.site.server_port}@127.0.0.1:{port}/at'>at</a>",
        "/img": f"<title>img</title><img src='{o}/img'>",
        "/iframe": f"<title>iframe</title><iframe src='{o}/iframe'></iframe>",
        "/fetch": f"<title>fetch</title><script>fetch('{o}/fetch', {{mode: 'no-cors'}})</script>",
        "/xhr": f"<script>const x = new XMLHttpRequest(); x.open('GET', '{o}/xhr'); x.send()</script>",
        "/ws": f"<title>ws</title><script>new WebSocket('ws://127.0.0.1:{port}/ws')</script>",
        "/nav": f"<title>nav</title><script>location.href = '{o}/nav'</script>",
        "/beacon": f"<script>navigator.sendBeacon('{o}/beacon', 'x')</script>",
        "/form": f"<form id=f method=post action='{o}/form'></form><script>f.submit()</script>",
        "/worker": "<script>new Worker(URL.createObjectURL(new Blob("
        f"[\"fetch('{o}/worker', {{mode: 'no-cors'}})\"])))</script>",
        "/link": f"<link rel=stylesheet href='{o}/css'><title>css</title>",
        "/busy": "<title>busy</title><script>while (true) {}</script>",
    }


def _big_pages() -> dict[str, bytes]:
    """50 MB each: in two million short paragraphs, or in one text node."""
    size = BIG_MB * 1_000_000
    row = "<p>a row of text</p>"  # 20 bytes
    return {
        "/big-dom": ("<title>big</title><h1>Big</h1>" + row * (size // len(row))).encode(),
        "/big-text": ("<title>big</title><h1>Big</h1><pre>" + "y" * size + "</pre>").encode(),
    }


def _serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _start() -> Servers:
    """The site at a free 4-digit port P, the other service at a free 10*P+d."""
    hits: list[str] = []
    state: dict[str, Servers] = {}
    big = _big_pages()

    class Other(BaseHTTPRequestHandler):
        def _hit(self) -> None:
            hits.append(self.path)
            body = f'{{"models": ["{SECRET}"]}}'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _hit

        def log_message(self, *args: object) -> None:
            pass

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/redirect":
                self.send_response(302)
                self.send_header("Location", state["s"].other_url + "/v1/models")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            pages = _pages(state["s"])
            body = big.get(path) or pages.get(path, "<title>404</title>").encode()
            self.send_response(200 if path in big or path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(1100, 6553)
        try:
            site = _serve(p, Site)
        except OSError:
            continue
        for d in range(10):
            try:
                other = _serve(p * 10 + d, Other)
            except OSError:
                continue
            state["s"] = Servers(site, other, hits)
            return state["s"]
        site.shutdown()
        site.server_close()
    pytest.skip("no free pair of ports P and 10*P+d on 127.0.0.1")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = _start()
    yield s
    for srv in (s.site, s.other):
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def env(servers: Servers) -> Iterator[SiteEnv]:
    e = SiteEnv(url=servers.base + "/")
    yield e
    e.close()


def _quiet(servers: Servers, settle_s: float = 0.7) -> list[str]:
    """The other service's hits, after giving late requests (images, beacons) time to land."""
    time.sleep(settle_s)
    return list(servers.hits)


@pytest.fixture
def fresh(env: SiteEnv, servers: Servers) -> SiteEnv:
    env.reset(TASK)
    servers.hits.clear()
    return env


# -- finding 4: goto() off the site, by every spelling -----------------------------------------


def _goto_targets(s: Servers) -> dict[str, str]:
    p, o = s.site.server_port, s.other.server_port
    return {
        "userinfo": f"http://127.0.0.1:{p}@127.0.0.1:{o}/v1/models",
        "port-prefix": f"http://127.0.0.1:{o}/v1/models",  # 10*P+d starts with the base
        "uppercase-scheme": f"HTTP://127.0.0.1:{o}/v1/models",
        "localhost": f"http://localhost:{o}/v1/models",
        "hex-ip": f"http://0x7f000001:{o}/v1/models",
        "backslash": f"http://127.0.0.1:{o}\\\\@127.0.0.1:{p}/v1/models",  # one \\ once parsed
        "dot-suffix": f"http://127.0.0.1:{p}.evil/v1/models",
        "data-url": f'data:text/html,<img src="http://127.0.0.1:{o}/data">',
        "redirect": f"http://127.0.0.1:{p}/redirect",
    }


@pytest.mark.browser
@pytest.mark.parametrize(
    "form",
    [
        "userinfo",
        "port-prefix",
        "uppercase-scheme",
        "localhost",
        "hex-ip",
        "backslash",
        "dot-suffix",
        "data-url",
        "redirect",
    ],
)
def test_goto_off_site_never_reaches_another_local_service(
    fresh: SiteEnv, servers: Servers, form: str
) -> None:
    url = _goto_targets(servers)[form]
    obs, _, _, _, info = fresh.step(f"goto('{url}')")
    assert _quiet(servers) == [], f"{form}: the other service was reached"
    assert SECRET not in obs
    assert info["error"] and "only pages under" in obs, obs
    assert fresh.session.run(lambda: fresh.session.page.url).startswith(servers.base + "/")


@pytest.mark.browser
@pytest.mark.parametrize(
    "path",
    ["/img", "/iframe", "/fetch", "/xhr", "/ws", "/nav", "/beacon", "/form", "/worker", "/link"],
)
def test_requests_from_the_page_to_another_port_are_blocked(
    fresh: SiteEnv, servers: Servers, path: str
) -> None:
    obs, _, _, _, _ = fresh.step(f"goto('{servers.base}{path}')")
    assert _quiet(servers, 1.0) == [], f"{path}: the other service was reached"
    assert SECRET not in obs


@pytest.mark.browser
def test_reset_to_a_page_that_reaches_out_is_blocked_too(env: SiteEnv, servers: Servers) -> None:
    servers.hits.clear()
    obs, _ = env.reset(Task(env="site", name="img", instruction="x", setup={"path": "/img"}))
    assert _quiet(servers, 1.0) == [] and SECRET not in obs


@pytest.mark.browser
@pytest.mark.parametrize(
    "url",
    [
        'javascript:document.title="PWNED"',
        'JAVASCRIPT:document.title="PWNED"',
        ' javascript:document.title="PWNED"',
        'java\tscript:document.title="PWNED"',
    ],
)
def test_javascript_goto_does_not_run(fresh: SiteEnv, url: str) -> None:
    obs, _, _, _, info = fresh.step(f"goto('{url}')")
    title = fresh.session.run(lambda: fresh.session.page.title())
    assert title == "Home" and "PWNED" not in obs.split("Accessibility tree:")[1]
    assert info["error"] and "only pages under" in obs, obs


@pytest.mark.browser
@pytest.mark.parametrize("spelling", ["file://", "FILE://", "file:"])
def test_file_goto_is_refused_before_it_loads(
    fresh: SiteEnv, servers: Servers, tmp_path: Path, spelling: str
) -> None:
    """The page would load an image from the other service: a hit means it was loaded."""
    marker = "MARKER-FROM-A-LOCAL-FILE"
    page = tmp_path / "local.html"
    page.write_text(f"<title>{marker}</title><p>{marker}</p><img src='{servers.other_url}/file'>")
    url = spelling + str(page)
    obs, _, _, _, info = fresh.step(f"goto('{url}')")
    assert _quiet(servers) == [], "the file:// page was loaded and ran"
    assert marker not in obs and info["error"] and "only pages under" in obs


@pytest.mark.browser
def test_etc_hostname_never_shows(fresh: SiteEnv) -> None:
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    obs, _, _, _, info = fresh.step("goto('file:///etc/hostname')")
    assert info["error"] and "only pages under" in obs
    if hostname:
        assert hostname not in obs.split("Accessibility tree:")[1]


def test_the_docs_crawl_stays_on_the_site(servers: Servers) -> None:
    """No browser: `docs()` crawls over plain HTTP; a redirect or a userinfo link must not leave."""
    servers.hits.clear()
    env = SiteEnv(url=servers.base + "/")
    sources = {d.source for d in env.docs()}
    assert {"site/", "site/img"} <= sources
    assert _quiet(servers, 0.2) == []


@pytest.mark.parametrize(
    "url", ["file:///etc/", "FILE:///", "javascript:1", "data:text/html,x", "ftp://127.0.0.1/"]
)
def test_a_non_http_base_url_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(EnvError) as e:
        SiteEnv(url=url)
    assert "\n" not in str(e.value) and "http" in str(e.value)


def test_origin_parsing_sees_through_spellings() -> None:
    from lbi.envs.web.confine import Confinement

    c = Confinement("http://127.0.0.1:4321/start")
    assert c.allows("http://127.0.0.1:4321/shop?x=1") and c.allows("HTTP://127.0.0.1:4321/")
    assert c.allows("http://127.0.0.1:4321") and not c.allows("https://127.0.0.1:4321/")
    for bad in [
        "http://127.0.0.1:43210/",
        "http://127.0.0.1:4321@127.0.0.1:9/",
        "http://x@127.0.0.1:4321/",
        "http://127.0.0.1:9\\@127.0.0.1:4321/",
        "http://127.0.0.1:4321.evil/",
        "http://127.0.0.1/",
        "http://localhost:4321/",
        "file:///etc/hostname",
        "javascript:alert(1)",
        "data:text/html,x",
        "about:blank",
        "",
        "//127.0.0.1:4321/",
    ]:
        assert not c.allows(bad), bad
    assert Confinement("http://LOCALHOST/").allows("http://localhost:80/a")


# -- finding 9: a 50 MB page ---------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/big-dom", "/big-text"])
def test_a_50mb_page_costs_one_bounded_step(fresh: SiteEnv, servers: Servers, path: str) -> None:
    t0 = time.monotonic()
    obs, _, _, _, _ = fresh.step(f"goto('{servers.base}{path}')")
    took = time.monotonic() - t0
    cut = [ln for ln in obs.splitlines() if ln.startswith("Page cut:")]
    print(f"\n{path}: one step took {took:.1f} s; {cut}")
    assert took < 60, f"{took:.0f} s for one step"
    # Cut to its first 5,000 elements, or, when its layout held Chromium past the probe,
    # closed: either way bounded, and said.
    assert "Page cut:" in obs and len(obs) <= 6000
    assert "the rest was removed" in obs or "did not respond" in obs
    # the episode goes on normally afterwards
    obs, _, _, _, info = fresh.step(f"goto('{servers.base}/')")
    assert not info["error"] and "Title: Home" in obs


@pytest.mark.browser
def test_a_page_stuck_in_its_own_script_is_replaced(fresh: SiteEnv, servers: Servers) -> None:
    """Before: the observation's first evaluate waited forever, holding the browser thread."""
    t0 = time.monotonic()
    obs, _, _, _, _ = fresh.step(f"goto('{servers.base}/busy')")
    took = time.monotonic() - t0
    print(f"\n/busy: one step took {took:.1f} s")
    assert took < 60 and "did not respond" in obs
    obs, _, _, _, info = fresh.step(f"goto('{servers.base}/')")
    assert not info["error"] and "Title: Home" in obs
