"""Docs for a site that has none: crawl its pages and describe what each one offers.

An agent that learns a site by interaction needs to know what exists there before it can
invent tasks. Each page becomes one document: its title, headings, forms (fields, buttons),
and links. The crawl stays on the start URL's origin and is bounded in pages and depth, so a
large site costs seconds, not minutes. Plain HTTP + `html.parser`: documentation needs the
server's HTML, not a rendered page, and this keeps the browser free for episodes.
"""

from __future__ import annotations

import urllib.request
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from lbi.envs.web.confine import Confinement
from lbi.types import Doc

_SKIP_EXT = (
    ".json",
    ".csv",
    ".db",
    ".sqlite",
    ".png",
    ".jpg",
    ".svg",
    ".css",
    ".js",
    ".ico",
    ".zip",
)


@dataclass
class PageInfo:
    url: str
    title: str = ""
    headings: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, absolute url)


class _Parser(HTMLParser):
    def __init__(self, info: PageInfo) -> None:
        super().__init__(convert_charrefs=True)
        self.info = info
        self._text_for: str | None = None  # "title", "h", or "a"
        self._buf: list[str] = []
        self._href = ""
        self._form: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("title", "h1", "h2", "h3", "a"):
            self._text_for, self._buf, self._href = (
                ("h" if tag[0] == "h" else tag),
                [],
                a.get("href", ""),
            )
        elif tag == "form":
            self._form = [
                f"method {a.get('method', 'get').upper()} action {a.get('action', '') or '(this page)'}"
            ]
        elif self._form is not None and tag in ("input", "select", "textarea", "button"):
            kind = a.get("type") or ("text" if tag == "input" else tag)
            if kind != "hidden":
                label = (
                    a.get("name")
                    or a.get("value")
                    or a.get("placeholder")
                    or a.get("aria-label")
                    or ""
                )
                self._form.append(f"{kind} {label}".strip())

    def handle_data(self, data: str) -> None:
        if self._text_for:
            self._buf.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._buf).split())
        if tag == "title" and self._text_for == "title":
            self.info.title = text
        elif tag in ("h1", "h2", "h3") and self._text_for == "h" and text:
            self.info.headings.append(text)
        elif tag == "a" and self._text_for == "a" and self._href:
            self.info.links.append((text, urldefrag(urljoin(self.info.url, self._href))[0]))
        elif tag == "form" and self._form is not None:
            self.info.forms.append("; ".join(self._form))
            self._form = None
        if tag in ("title", "h1", "h2", "h3", "a"):
            self._text_for = None


class _StayOnSite(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only on the site's origin (a page may point at any local service)."""

    def __init__(self, confine: Confinement) -> None:
        self.confine = confine

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if not self.confine.allows(newurl):
            return None  # urllib then raises HTTPError for the 3xx: the page is skipped
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, confine: Confinement, timeout_s: float = 5.0) -> PageInfo | None:
    if not confine.allows(url):
        return None
    opener = urllib.request.build_opener(_StayOnSite(confine))
    try:
        with opener.open(url, timeout=timeout_s) as resp:
            if "html" not in resp.headers.get("Content-Type", ""):
                return None
            html = resp.read(2_000_000).decode(
                resp.headers.get_content_charset() or "utf-8", "replace"
            )
    except (OSError, ValueError):
        return None
    info = PageInfo(url=url)
    _Parser(info).feed(html)
    return info


def crawl(start: str, max_pages: int = 25, max_depth: int = 2) -> list[PageInfo]:
    """Breadth-first over same-origin links, skipping data downloads and query variants."""
    confine = Confinement(start)
    seen = {start}
    pages: list[PageInfo] = []
    todo = deque([(start, 0)])
    while todo and len(pages) < max_pages:
        url, depth = todo.popleft()
        info = fetch(url, confine)
        if info is None:
            continue
        pages.append(info)
        if depth >= max_depth:
            continue
        for _, link in info.links:
            parts = urlsplit(link)
            if (
                not confine.allows(link)
                or parts.query
                or parts.path.endswith(_SKIP_EXT)
                or link in seen
            ):
                continue
            seen.add(link)
            todo.append((link, depth + 1))
    return pages


def page_doc(env: str, page: PageInfo, max_links: int = 40) -> Doc:
    path = urlsplit(page.url).path or "/"
    # Paths only, never host:port: the demo server's port changes per run, and a doc's id is
    # a hash of its text, so absolute URLs would make every run's docs look new.
    lines = [f"# Page {path}: {page.title or '(no title)'}"]
    if page.headings:
        lines += ["", "Headings: " + " | ".join(dict.fromkeys(page.headings))]
    if page.forms:
        lines += ["", "Forms:"] + [f"- {f}" for f in page.forms]
    links = [(t, u) for t, u in dict.fromkeys(page.links) if t][:max_links]
    if links:
        lines += ["", "Links:"] + [
            f"- {t} -> {urlsplit(u).path or '/'}{'?' + urlsplit(u).query if urlsplit(u).query else ''}"
            for t, u in links
        ]
    return Doc(env=env, source=f"site{path}", title=page.title or path, text="\n".join(lines))


def site_docs(env: str, start: str, max_pages: int = 25) -> list[Doc]:
    return [page_doc(env, p) for p in crawl(start, max_pages=max_pages)]
