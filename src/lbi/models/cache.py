"""The door's disk cache: one SQLite file (WAL) mapping a request hash to the model's answer.

Why SQLite in WAL mode: many doors (one per model) and several processes (parallel runs, a
resumed run next to a finished one) read and write the same file; WAL lets readers and one
writer proceed together, and every write is a transaction, so a process killed at any moment
leaves either the old or the new rows, never a torn file. A dict in front of the file makes a
repeated hit cost a hash lookup instead of a query.

Group commit: inside an event loop, `put` keeps the answer in memory at once (so hits and
single-flight see it) and the answers that arrive in the same loop turn are written in one
transaction on the next turn. One commit per answer cost ~0.1 ms of CPU each, which at
concurrency 32 on two cores is a tenth of the door's budget. A kill between an answer and that
next turn loses the answer, exactly as a kill between the answer and a direct write would.

A cache that cannot be written (another process holds its lock past the busy timeout, the disk
is full) costs only a later rerun its hits, never the run: the answers stay in memory, a warning
is printed once, the write is tried again `RETRY_AFTER_S` later (then waiting only
`RETRY_WAIT_MS` for the lock, so the event loop never stalls for long) and at close, and what
still cannot be written then is dropped with a second warning. A file that cannot even be opened
leaves a memory-only cache, with a warning.

The cache stores only answers (`ChatResponse.to_json()`) under a sha256 key. Requests never
carry API keys (backends read them from the environment), so no secret can reach the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lbi.models.base import ChatRequest, ChatResponse
from lbi.sqlite_wal import open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before it is put off
RETRY_AFTER_S = 30.0  # a write put off is tried again on the first put after this long
RETRY_WAIT_MS = 50  # ... and then waits only this long for the lock: the event loop must not stall


def cache_key(
    backend_prefix: str,
    model_name: str,
    request: ChatRequest,
    *,
    with_meta: bool = False,
    endpoint: dict[str, Any] | None = None,
) -> str:
    """sha256 over (backend, model, everything that changes the answer).

    `request.params()` keeps the sample index only at temperature > 0, so repeated samples are
    distinct entries while greedy calls share one. `with_meta`: the backend's answer depends on
    `request.meta` too (`Capabilities.reads_meta`, the scripted model), so it is part of the key.
    `endpoint`: what else the backend says changes the answer (`Model.cache_identity`: the
    server's base_url, a reasoning effort); empty leaves the key as it always was.
    """
    parts: list[Any] = [backend_prefix, model_name, request.params()]
    if with_meta:
        parts.append({"meta": request.meta})
    if endpoint:
        parts.append({"endpoint": endpoint})
    blob = json.dumps(
        parts,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def record_key(request: ChatRequest) -> str:
    """The backend-neutral key the door's recorder writes, so a recording made with any model
    (`openai:gpt-4o`, `local`) can be replayed by the scripted model."""
    return cache_key("record", "", request)


class CallCache:
    """get/put of model answers by key; safe across processes, cheap on repeated hits."""

    def __init__(self, path: str | Path, memory_items: int = 100_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._memory: dict[str, dict[str, Any]] = {}
        self._memory_items = memory_items
        # One connection for the process; the lock makes it usable from worker threads too
        # (asyncio callers in one loop never contend for it).
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, str, float]] = []
        self._flush_scheduled = False
        self._retry_at = 0.0  # time.monotonic() before which a put does not try to write
        self._warned = False
        self._conn: sqlite3.Connection | None = None
        self._busy_ms = int(BUSY_TIMEOUT_S * 1000)
        try:
            self._conn = open_wal(self.path, _SCHEMA, timeout=BUSY_TIMEOUT_S)
            self._busy_ms = int(self._conn.execute("PRAGMA busy_timeout").fetchone()[0])
        except sqlite3.OperationalError as e:
            self._warn(f"cannot be opened ({e}); answers are cached in memory only for this run")

    def get(self, key: str) -> ChatResponse | None:
        data = self._memory.get(key)
        if data is None:
            if self._conn is None:
                return None
            with self._lock:
                try:
                    row = self._conn.execute(
                        "SELECT response FROM calls WHERE key = ?", (key,)
                    ).fetchone()
                except sqlite3.OperationalError:
                    return None  # unreadable now: a miss, and the model is asked
            if row is None:
                return None
            data = json.loads(row[0])
            self._remember(key, data)
        response = ChatResponse.from_json(data)
        response.cached = True
        return response

    def put(self, key: str, response: ChatResponse, model: str = "") -> None:
        data = response.to_json()
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self._remember(key, data)
        if self._conn is None:  # memory only (the file could not be opened)
            return
        with self._lock:
            self._pending.append((key, model, blob, time.time()))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: write now
            self._flush_when_due()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush_when_due()

    def _flush_when_due(self) -> None:
        # After a failed write, waiting out the busy timeout again at every answer would stall
        # the event loop: the retry waits until RETRY_AFTER_S has passed.
        if time.monotonic() >= self._retry_at:
            self.flush()

    def flush(self) -> bool:
        """Write every pending answer in one transaction. False when that cannot be done now
        (locked, disk full): the answers stay pending, still served from memory."""
        with self._lock:
            if not self._pending:
                return True
            if self._conn is None:
                return False
            rows, self._pending = self._pending, []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT OR REPLACE INTO calls (key, model, response, created) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                self._pending[:0] = rows  # kept for the next attempt
                del self._pending[: -self._memory_items]  # bounded, like the memory layer
                self._retry_at = time.monotonic() + RETRY_AFTER_S
                self._conn.execute(f"PRAGMA busy_timeout = {RETRY_WAIT_MS}")
                self._warn(
                    f"cannot be written now ({e}); answers are kept in memory and written "
                    "later, the run goes on"
                )
                return False
            if self._retry_at:
                self._retry_at = 0.0
                self._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            return True

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        self.flush()
        if self._conn is None:
            return 0
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        """A last try at what is pending; what still cannot be written is dropped, with a word."""
        if not self.flush():
            lost, self._pending = len(self._pending), []
            self._warn(
                f"{lost} answer{'s' if lost != 1 else ''} could not be saved; a rerun asks "
                "the model for them again",
                again=True,
            )
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def _warn(self, what: str, again: bool = False) -> None:
        """One line on stderr, once per cache (and once more at close when answers are lost)."""
        if self._warned and not again:
            return
        self._warned = True
        print(f"warning: call cache {self.path} {what}", file=sys.stderr, flush=True)

    def _remember(self, key: str, data: dict[str, Any]) -> None:
        if len(self._memory) >= self._memory_items:
            # Drop the oldest entry (dicts keep insertion order): a cheap bounded memory layer.
            self._memory.pop(next(iter(self._memory)))
        self._memory[key] = data

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
