"""One Chromium per worker process, reused across episodes, that never outlives its owner.

Why this shape:
- Launching Chromium costs ~1 s; a fresh *context* costs ~20 ms. So every episode gets a new
  context (clean cookies, storage, pages) in one long-lived browser.
- Playwright's sync API is bound to the thread that started it, and the rollout code may call
  an environment from any thread (or from `asyncio.to_thread`, which picks a different pool
  thread each time). So all Playwright calls run on one dedicated thread that the handle owns;
  `call(fn)` hands work to it and waits.
- Debian's Chromium is used (`/usr/bin/chromium`); Playwright's own download fails offline.
- Every browser carries a marker switch `--lbi-owner=<token>` so tests and operators can find
  ours among other Chromium processes, and a guard process (`watchdog.py`) kills the driver,
  the browser and all their descendants when this process dies, even by SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import psutil

from lbi.envs.base import EnvError
from lbi.envs.web.watchdog import guard_add, start_guard, stop_guard

T = TypeVar("T")

CHROMIUM_ENV = "LBI_CHROMIUM"  # override the executable
TOKEN_ENV = "LBI_BROWSER_TOKEN"  # fix the marker token (tests use it to find our processes)
MARKER = "--lbi-owner="
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """The Chromium executable, or an EnvError that says how to install it."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        raise EnvError(
            f"Chromium not found at {path}; run scripts/install_browser.sh "
            f"(apt-get install -y chromium) or set {CHROMIUM_ENV}"
        )
    return path


def marker_token() -> str:
    return os.environ.get(TOKEN_ENV) or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def find_marked(token: str) -> list[psutil.Process]:
    """Live processes whose command line carries our marker for `token`."""
    needle = MARKER + token
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(needle in arg for arg in p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


class Browser:
    """A Playwright driver + one Chromium, on a private thread, guarded by a watchdog."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or marker_token()
        self.executable = chromium_path()
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="lbi-chromium", daemon=True)
        self._pw: Any = None
        self.browser: Any = None
        self._guard: subprocess.Popen[bytes] | None = None
        self._thread.start()
        try:
            self.call(self._launch)
        except Exception:
            self.close()
            raise

    # -- the private thread ---------------------------------------------------------------
    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, fut = job
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as e:  # handed back to the caller's thread
                    fut.set_exception(e)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the browser thread (directly if already on it) and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        if not self._thread.is_alive():
            raise EnvError("the browser thread has stopped; the browser was closed")
        fut: Future[T] = Future()
        self._jobs.put((fn, fut))
        return fut.result()

    # -- launch and guard -----------------------------------------------------------------
    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        from lbi.envs.web.axtree import BID_ATTRIBUTE

        self._start_guard()
        self._pw = sync_playwright().start()
        self._pw.selectors.set_test_id_attribute(
            BID_ATTRIBUTE
        )  # BrowserGym's actions find elements by bid
        try:
            self.browser = self._pw.chromium.launch(
                executable_path=self.executable,
                headless=True,
                args=[*CHROMIUM_FLAGS, MARKER + self.token],
            )
        except Exception as e:
            raise EnvError(
                f"Chromium failed to start ({self.executable}): {str(e).splitlines()[0]}"
            ) from None
        self._guard_pids()

    def _start_guard(self) -> None:
        self._guard = start_guard()

    def _guard_pids(self) -> None:
        """Tell the guard about the driver (our child) and the marked Chromium (its child)."""
        me = psutil.Process()
        procs = [c for c in me.children() if "run-driver" in " ".join(_cmdline(c))]
        procs += find_marked(self.token)
        assert self._guard is not None
        guard_add(self._guard, procs)

    def pids(self) -> list[int]:
        """Our Chromium processes: the marked main process and all its descendants."""
        out = []
        for p in find_marked(self.token):
            out.append(p.pid)
            try:
                out += [c.pid for c in p.children(recursive=True)]
            except psutil.Error:
                continue
        return out

    # -- contexts and shutdown ------------------------------------------------------------
    def new_context(self, **kwargs: Any) -> Any:
        return self.call(lambda: self.browser.new_context(**kwargs))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.browser is not None and self.browser.is_connected()

    def close(self) -> None:
        """Close browser and driver; the guard then exits on EOF with nothing left to kill."""
        if self._thread.is_alive():
            try:
                self.call(self._shutdown)
            finally:
                self._jobs.put(None)
                self._thread.join(timeout=10)
        if self._guard is not None:
            stop_guard(self._guard)
            self._guard = None

    def _shutdown(self) -> None:
        for closer in (getattr(self.browser, "close", None), getattr(self._pw, "stop", None)):
            if closer is not None:
                with contextlib.suppress(Exception):  # gone already (crashed): the guard cleans up
                    closer()
        self.browser = self._pw = None


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


_SHARED: dict[int, Browser] = {}
_LOCK = threading.Lock()


def shared_browser() -> Browser:
    """This process's browser, launched on first use and relaunched if it died."""
    with _LOCK:
        b = _SHARED.get(os.getpid())  # keyed by pid: a forked child must not reuse the parent's
        if b is None or not b.alive:
            if b is not None:
                b.close()
            b = _SHARED[os.getpid()] = Browser()
        return b


def close_shared_browser() -> None:
    with _LOCK:
        b = _SHARED.pop(os.getpid(), None)
    if b is not None:
        b.close()


atexit.register(close_shared_browser)
