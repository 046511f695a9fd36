"""One episode's browser state: a fresh context and page in the shared browser.

Every web environment (MiniWoB, any local site) is a `PageSession` plus a way to start a
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
from lbi.envs.web.confine import Confinement

T = TypeVar("T")

ACTION_TIMEOUT_MS = actions.ACTION_TIMEOUT_MS
SETTLE_S = 0.05  # let JS handlers fire after an action (BrowserGym waits a flat 0.5 s)
STUCK_MS = 10_000  # a page that cannot run a no-op script this long is stuck (legit ones: < 1 s)
# The options every web environment takes for its observation (env_options.<env>.*).
SESSION_OPTIONS = {"max_chars", "screenshot", "visible_only"}


def session_options(opts: dict[str, Any]) -> dict[str, Any]:
    """`PageSession` keyword arguments from an environment's options, with the defaults."""
    return {
        "max_chars": int(opts.get("max_chars", 6000)),
        "screenshot": bool(opts.get("screenshot", False)),
        "visible_only": bool(opts.get("visible_only", False)),
    }


class PageSession:
    def __init__(
        self,
        subsets: list[str],
        max_chars: int = 6000,
        screenshot: bool = False,
        visible_only: bool = False,
        timeout_ms: int = ACTION_TIMEOUT_MS,
        confine: Confinement | None = None,
    ) -> None:
        self.timeout_ms = timeout_ms  # the context's default and every action function's limit
        self.aset = actions.action_set(subsets, timeout_ms)
        self.max_chars = max_chars
        self.screenshot = screenshot
        # Off by default: the DOM snapshot it needs costs ~0.1-0.3 s a step, and Chromium's
        # accessibility tree already leaves out display:none elements.
        self.visible_only = visible_only
        self.confine = confine  # None: any URL (MiniWoB's own file:// pages)
        self.browser: Browser | None = None
        self.context: Any = None
        self.page: Any = None
        self.goal = ""
        self.messages: list[str] = []  # what the agent sent with send_msg_to_user
        self.view: PageView | None = None
        self.last_error = ""
        self.notice = ""  # for the next observation: the page was replaced (ensure_responsive)

    def run(self, fn: Callable[[], T]) -> T:
        assert self.browser is not None, "the session is not open"
        return self.browser.call(fn)

    def open(self, viewport: dict[str, int] | None = None, timeout_ms: int | None = None) -> Any:
        """Close any previous context and open a fresh one; returns the new page."""
        self.close_context()
        self.browser = shared_browser()

        def _open() -> Any:
            options = self.confine.context_options() if self.confine else {}
            self.context = self.browser.browser.new_context(viewport=viewport, **options)  # type: ignore[union-attr]
            if self.confine:
                self.confine.install(self.context)  # before the first page, so before any request
            self.context.set_default_timeout(timeout_ms or self.timeout_ms)
            self.page = self.context.new_page()
            return self.page

        self.messages, self.last_error, self.view = [], "", None
        return self.run(_open)

    def observe(self) -> str:
        """Extract the page; return the text observation (and keep the view for digests)."""

        def _observe() -> PageView:
            self.ensure_responsive()
            with contextlib.suppress(Exception):  # a slow page is still observed as it is
                self.page.wait_for_load_state("domcontentloaded", timeout=3000)
            view = extract(self.page, visible_only=self.visible_only, screenshot=self.screenshot)
            view.cut = "; ".join(filter(None, [self.notice, view.cut]))
            self.notice = ""
            return view

        self.view = self.run(_observe)
        return render(self.goal, self.view, self.max_chars, self.last_error, self.messages)

    def ensure_responsive(self) -> None:
        """Replace a page stuck in its own script (`while(true){}`), or in laying out a huge
        document, with a blank one.

        Playwright's evaluate has no timeout, and every episode of the process shares the
        browser thread: one stuck page would hold them all. The probe runs in the driver with a
        timeout. A page that turns busy after the probe still holds the thread (see bound.py).
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        def _probe() -> None:
            try:
                self.page.wait_for_function("() => true", timeout=STUCK_MS)
            except PlaywrightTimeout:
                stuck, self.page = self.page, self.context.new_page()
                with contextlib.suppress(Exception):
                    stuck.close(run_before_unload=False)
                self.notice = (
                    f"the page did not respond for {STUCK_MS // 1000} s (a script or a layout "
                    "that never yields); it was closed and a blank page opened"
                )
            except Exception:  # navigating or closed: the extraction reports it
                pass

        self.run(_probe)

    def act(self, action: str) -> str:
        """Parse and execute one action; return the error text ('' on success). Never raises."""
        try:
            code = actions.parse(self.aset, action)
        except Exception as e:  # pyparsing/ValueError/NameError: the model wrote no valid call
            self.last_error = f"cannot parse action {action[:80]!r}: {_one_line(e)}"
            return self.last_error

        page = _GuardedPage(self.page, self.confine) if self.confine else self.page

        def _act() -> None:
            actions.execute(code, page, self.messages.append)
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


class Refused(Exception):
    """An action's URL is off the allowed origin; raised before anything was sent."""


class _GuardedPage:
    """The page as action code sees it: `goto` checks its URL before Chromium sees it."""

    def __init__(self, page: Any, confine: Confinement) -> None:
        self._page, self._confine = page, confine

    def goto(self, url: str, **kwargs: Any) -> Any:
        if refusal := self._confine.refusal(url):
            raise Refused(refusal)
        return self._page.goto(url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._page, name)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
