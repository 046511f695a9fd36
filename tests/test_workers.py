"""The daemon pool's exit path: after `abandon()` no call starts, and a process that ran
in-process calls ends with os._exit after its exit handlers (issue 26: SIGSEGV on Ctrl-C)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from lbi.models.workers import DaemonPool


def test_abandon_starts_nothing_more() -> None:
    pool = DaemonPool(1, "t")
    gate, ran = threading.Event(), []
    first = pool.submit(gate.wait, 10)
    queued = [pool.submit(ran.append, i) for i in range(5)]
    while pool.running == 0:
        time.sleep(0.01)
    pool.abandon()
    gate.set()
    first.result(timeout=10)
    time.sleep(0.2)
    assert ran == [] and all(f.cancelled() for f in queued)
    assert pool.running == 0


def test_a_worker_holding_a_call_taken_before_abandon_drops_it() -> None:
    """The race behind the crash: a worker takes a queued call just as the process exits."""
    pool = DaemonPool(1, "t")
    ran: list[int] = []
    pool._abandoned = True  # abandon() landed between the worker's get() and its start
    future = pool.submit(ran.append, 1)
    time.sleep(0.2)
    assert ran == [] and future.cancelled() and pool.running == 0


def test_exit_after_native_calls_runs_handlers_and_skips_teardown() -> None:
    script = textwrap.dedent(
        """
        import atexit, threading, time
        from lbi.models.workers import DaemonPool, exit_abandoning_calls
        atexit.register(lambda: print("handlers ran", flush=True))
        pool = DaemonPool(1, "t")
        pool.submit(time.sleep, 30)
        while pool.running == 0:
            time.sleep(0.01)
        exit_abandoning_calls(130)
        print("not reached")
        """
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stderr
    assert done.stdout.strip() == "handlers ran"
    assert time.monotonic() - start < 20
