"""Open a SQLite file in WAL mode so that several processes can open it at the same moment.

`sqlite3.connect(timeout=...)` installs a busy handler, but SQLite does not call it everywhere:
switching a new file to WAL takes the file's exclusive lock after reading its header, and when
two connections both hold the shared lock and both want the exclusive one, SQLite answers one of
them "database is locked" at once (waiting could deadlock). Two runs started together on one
cache file hit exactly that (seen in CI, about one open in 160 with four processes here). Setup
is idempotent, so it is simply retried, with a short growing pause, until `timeout` has passed.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path


def open_wal(path: str | Path, schema: str, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection (autocommit, usable from threads) to `path` in WAL mode with `schema` made."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a killed process; only power loss can drop
            # the last few commits (never corrupt the file).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
            return conn
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() + pause > deadline:
                conn.close()
                raise
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, 0.5)


def is_busy(error: sqlite3.OperationalError) -> bool:
    # The low byte is the primary code: SQLITE_BUSY_RECOVERY and friends are busy too.
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
