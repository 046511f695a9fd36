"""Browser lifecycle: one browser per process reused across episodes, nothing left behind.

Measured here: Chromium launched by Playwright exits by itself when its driver's pipe closes,
even when owner and driver are SIGKILLed; the datasette server does not. The guard process
(watchdog.py) covers both, and a browser that hangs instead of exiting.

Our Chromium carries `--lbi-owner=<token>`; the tests fix the token so they can look for
leftovers by command line, and also check every pid the browser ever reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from lbi.envs.base import EnvError
from lbi.envs.web import browser as web_browser
from lbi.envs.web.miniwob import MiniwobEnv, benchmark_task

pytestmark = pytest.mark.browser

CHILD = """
import json, sys, psutil
from lbi.envs.web.browser import shared_browser
from lbi.envs.web.miniwob import MiniwobEnv, benchmark_task
from lbi.envs.web.server import demo_db, shared_server
server = shared_server(demo_db())  # a datasette child: it does not die with us on its own
env = MiniwobEnv()
for ep in range(10_000):
    env.reset(benchmark_task("click-test"), seed=ep)
    env.step("click('13')" if ep % 2 else "click('nope')")  # every other episode fails its action
    b = shared_browser()
    driver = [c.pid for c in psutil.Process().children() if "run-driver" in " ".join(c.cmdline())]
    print(json.dumps({"ep": ep, "pids": b.pids() + driver, "server": server.proc.pid,
                      "contexts": len(b.browser.contexts)}), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(pids: set[int], token: str, timeout_s: float = 20.0) -> tuple[set[int], list[int]]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = {p for p in pids if _alive(p)}
        marked = [p.pid for p in web_browser.find_marked(token) if _alive(p.pid)]
        if (not left and not marked) or time.monotonic() > deadline:
            return left, marked
        time.sleep(0.25)


@pytest.mark.solo
@pytest.mark.slow
def test_50_episodes_then_sigkill_leaves_no_chromium() -> None:
    token = f"test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, web_browser.TOKEN_ENV: token},
    )
    seen: set[int] = set()
    counts = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            rec = json.loads(line)
            seen |= set(rec["pids"]) | {rec["server"]}
            counts[rec["ep"]] = (len(rec["pids"]), rec["contexts"])
            if rec["ep"] == 49:
                break
        assert len(counts) == 50, "the child died early"
        # One browser reused: a single context at a time, and no process growth over episodes.
        assert all(c == 1 for _, c in counts.values())
        assert counts[49][0] <= counts[4][0] + 2, counts
        assert web_browser.find_marked(token), "the child's browser should be running now"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left, marked = _wait_gone(seen, token)
    assert not left and not marked, f"left behind: pids {sorted(left)}, marked {marked}"


def test_episodes_failures_and_close_leave_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(web_browser.TOKEN_ENV, token)
    web_browser.close_shared_browser()  # a browser from an earlier test carries another token
    env = MiniwobEnv()
    seen: set[int] = set()
    try:
        for ep in range(4):
            env.reset(benchmark_task("click-test"), seed=ep)
            seen |= set(web_browser.shared_browser().pids())
        with pytest.raises(EnvError):
            env.reset(benchmark_task("click-test").model_copy(update={"setup": {"task": "nope"}}))
        # The browser crashes mid-episode: the next reset must relaunch, and the dead one's
        # leftovers are cleaned by its guard.
        old = web_browser.shared_browser()
        psutil.Process(web_browser.find_marked(token)[0].pid).kill()
        time.sleep(0.5)
        obs, _ = env.reset(benchmark_task("click-test"), seed=9)
        assert "button" in obs and web_browser.shared_browser() is not old
        seen |= set(web_browser.shared_browser().pids())
    finally:
        env.close()
        web_browser.close_shared_browser()
    left, marked = _wait_gone(seen, token)
    assert not left and not marked, f"left behind: pids {sorted(left)}, marked {marked}"
