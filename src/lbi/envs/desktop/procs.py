"""Every process of a desktop episode carries a marker in its environment, and dies with it.

Why a marker in the environment rather than a list of pids: the episode's processes fork
(LibreOffice's `soffice` script -> oosplash -> soffice.bin) and D-Bus activates services
(the AT-SPI bus launcher, its own bus daemon, the registry) that are children of a bus daemon,
not of us. An environment variable is inherited by all of them, so `sweep` finds exactly ours
and nothing else, even after a parent died and its children were re-parented.

A guard process (`python -m lbi.envs.desktop.procs TOKEN`) holds a pipe from the owner; at
end-of-file (the owner closed it, or died, even by SIGKILL) it sweeps the owner's token.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psutil

MARK = "LBI_DESKTOP_MARK"  # set on every process an episode starts: "<owner token>:<episode>"
OWNER_ENV = "LBI_DESKTOP_OWNER"  # fixes the owner token (tests use it to look for leftovers)


def owner_token() -> str:
    return os.environ.get(OWNER_ENV) or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def marked(prefix: str) -> list[psutil.Process]:
    """Live processes whose marker starts with `prefix` (never this process; an empty prefix
    matches nothing, so a sweep can never reach beyond our own processes)."""
    me = os.getpid()
    out = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            mark = p.environ().get(MARK) or ""
            if prefix and mark.startswith(prefix) and p.status() != "zombie":
                out.append(p)
        except psutil.Error:
            continue
    return out


def sweep(prefix: str, grace_s: float = 1.0) -> int:
    """SIGTERM every marked process, SIGKILL what is left after `grace_s`; return how many."""
    procs = marked(prefix)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=3)
    return len(procs)


def kill_group(procs: list[Any]) -> None:
    """SIGKILL the process group led by `procs[0]` and reap every process in `procs`."""
    if not procs:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(procs[0].pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def start_guard(prefix: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != MARK}
    return subprocess.Popen(
        [sys.executable, "-m", "lbi.envs.desktop.procs", prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C aimed at the owner must not stop the guard first
        env=env,
    )


def stop_guard(guard: subprocess.Popen[bytes]) -> None:
    if guard.stdin is not None:
        with contextlib.suppress(OSError):
            guard.stdin.close()
    try:
        guard.wait(timeout=15)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def _guard_main(prefix: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass  # the owner never writes; EOF means it closed the pipe or died
    sweep(prefix)
    time.sleep(0.5)  # services activated during the sweep (a bus launcher) get a second pass
    sweep(prefix)


if __name__ == "__main__":
    _guard_main(sys.argv[1])
