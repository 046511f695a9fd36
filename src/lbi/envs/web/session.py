"""One episode's browser state: a fresh context and page in the shared browser.

Both web environments (MiniWoB and any local site) are a `PageSession` plus a way to start a
task and judge it, so observation and action handling is written once. Every Playwright call
goes through `Browser.call`, i.e. onto the browser's own thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lbi.envs.web import actions
from lbi.envs.web.axtree import PageView, extract, render
from lbi.envs.web.browser import Browser, shared_browser

T = TypeVar("T")

ACTION_TIMEOUT_MS = actions.ACTION_TIMEOUT_MS
SETTLE_S = 0.05  # let JS handlers fire after an action (BrowserGym waits a flat 0.5 s)


class PageSession:
    def __init__(
        self,
        subsets: list[str],
        max_chars: int = 6000,
        screenshot: bool = False,
        visible_only: bool = False,
        timeout_ms: int = ACTION_TIMEOUT_MS,
    ) -> None:
        self.timeout_ms = timeout_ms  # the context's default and every action function's limit
        self.aset = actions.action_set(subsets, timeout_ms)
        self.max_chars = max_chars
        self.screenshot = screenshot
        # Off by default: the DOM snapshot it needs costs ~0.1-0.3 s a step, and Chromium's
        # accessibility tree already leaves out display:none elements.
        self.visible_only = visible_only
        self.browser: Browser | None = None
        self.context: Any = None
        self.page: Any = None
        self.goal = ""
        self.messages: list[str] = []  # what the agent sent with send_msg_to_user
        self.view: PageView | None = None
        self.last_error = ""

    def run(self, fn: Callable[[], T]) -> T:
        assert self.browser is not None, "the session is not open"
        return self.browser.call(fn)

    def open(self, viewport: dict[str, int] | None = None, timeout_ms: int | None = None) -> Any:
        """Close any previous context and open a fresh one; returns the new page."""
        self.close_context()
        self.browser = shared_browser()

        def _open() -> Any:
            self.context = self.browser.browser.new_context(viewport=viewport)  # type: ignore[union-attr]
            self.context.set_default_timeout(timeout_ms or self.timeout_ms)
            self.page = self.context.new_page()
            return self.page

        self.messages, self.last_error, self.view = [], "", None
        return self.run(_open)

    def observe(self) -> str:
        """Extract the page; return the text observation (and keep the view for digests)."""

        def _observe() -> PageView:
            with contextlib.suppress(Exception):  # a slow page is still observed as it is
                self.page.wait_for_load_state("domcontentloaded", timeout=3000)
            return extract(self.page, visible_only=self.visible_only, screenshot=self.screenshot)

        self.view = self.run(_observe)
        return render(self.goal, self.view, self.max_chars, self.last_error, self.messages)

    def act(self, action: str) -> str:
        """Parse and execute one action; return the error text ('' on success). Never raises."""
        try:
            code = actions.parse(self.aset, action)
        except Exception as e:  # pyparsing/ValueError/NameError: the model wrote no valid call
            self.last_error = f"cannot parse action {action[:80]!r}: {_one_line(e)}"
            return self.last_error

        def _act() -> None:
            actions.execute(code, self.page, self.messages.append)
            time.sleep(SETTLE_S)

        try:
            self.run(_act)
            self.last_error = ""
        except Exception as e:  # missing element, timeout, navigation failure...
            self.last_error = _one_line(e)
        return self.last_error

    def digest(self, extra: str = "") -> str:
        basis = (self.view.url + "\n" + self.view.tree) if self.view else ""
        return hashlib.sha256((basis + extra).encode()).hexdigest()[:16]

    def close_context(self) -> None:
        ctx, self.context, self.page = self.context, None, None
        if ctx is not None and self.browser is not None and self.browser.alive:
            with contextlib.suppress(Exception):  # the browser died; the next open relaunches it
                self.browser.call(ctx.close)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
