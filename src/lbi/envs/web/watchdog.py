"""A tiny guard process that kills our Chromium when the process that owns it dies.

Why a separate process: a worker killed with SIGKILL runs no cleanup code, and Playwright's
driver only sometimes takes its browser down with it. The guard reads the owner's pipe on its
stdin; the owner writes `PID CREATE_TIME` lines for every process it wants guarded (the
Playwright driver and the Chromium main process). End-of-file means the owner is gone, normally
or not, and the guard kills every guarded process and every descendant it has seen, checking
create times so a recycled pid is never hit. It runs in its own session so a Ctrl-C aimed at
the owner's terminal does not kill it before it has done its job.

Run as `python -m lbi.envs.web.watchdog`; it imports nothing from lbi.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys

import psutil

REFRESH_S = 1.0  # how often descendants are re-read while the owner lives


def _proc(pid: int, created: float) -> psutil.Process | None:
    try:
        p = psutil.Process(pid)
        return p if abs(p.create_time() - created) < 0.05 else None
    except psutil.Error:
        return None


def _descendants(roots: dict[int, float]) -> dict[int, float]:
    seen: dict[int, float] = {}
    for pid, created in roots.items():
        p = _proc(pid, created)
        if p is None:
            continue
        try:
            for c in p.children(recursive=True):
                seen[c.pid] = c.create_time()
        except psutil.Error:
            continue
    return seen


def kill_all(known: dict[int, float]) -> int:
    """SIGKILL every known process that is still the same process; return how many."""
    procs = [p for pid, t in known.items() if (p := _proc(pid, t)) is not None]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=3)
    return len(procs)


def start_guard() -> subprocess.Popen[bytes]:
    """Start a guard; the caller keeps the returned process (its stdin is the pipe)."""
    return subprocess.Popen(
        [sys.executable, "-m", "lbi.envs.web.watchdog"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def guard_add(guard: subprocess.Popen[bytes], procs: list[psutil.Process]) -> None:
    """Put processes (and, from now on, their descendants) under the guard."""
    assert guard.stdin is not None
    for p in procs:
        guard.stdin.write(f"{p.pid} {p.create_time()}\n".encode())
    guard.stdin.flush()


def stop_guard(guard: subprocess.Popen[bytes]) -> None:
    """Close the pipe after a clean shutdown; the guard exits with nothing left to kill."""
    if guard.stdin is not None:
        guard.stdin.close()
    try:
        guard.wait(timeout=10)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    roots: dict[int, float] = {}
    seen: dict[int, float] = {}
    fd = sys.stdin.fileno()
    buf = b""
    while True:
        ready, _, _ = select.select([fd], [], [], REFRESH_S)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the owner closed the pipe or died
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                pid, created = line.split()
                roots[int(pid)] = float(created)
        seen.update(_descendants(roots))
    seen.update(_descendants(roots))
    kill_all({**seen, **roots})


if __name__ == "__main__":
    main()
