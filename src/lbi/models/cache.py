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

The cache stores only answers (`ChatResponse.to_json()`) under a sha256 key. Requests never
carry API keys (backends read them from the environment), so no secret can reach the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
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


def cache_key(backend_prefix: str, model_name: str, request: ChatRequest) -> str:
    """sha256 over (backend, model, everything that changes the answer).

    `request.params()` keeps the sample index only at temperature > 0, so repeated samples are
    distinct entries while greedy calls share one.
    """
    blob = json.dumps(
        [backend_prefix, model_name, request.params()],
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
        self._conn = open_wal(self.path, _SCHEMA)
        self._pending: list[tuple[str, str, str, float]] = []
        self._flush_scheduled = False
        self._flush_error: sqlite3.Error | None = None

    def get(self, key: str) -> ChatResponse | None:
        data = self._memory.get(key)
        if data is None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT response FROM calls WHERE key = ?", (key,)
                ).fetchone()
            if row is None:
                return None
            data = json.loads(row[0])
            self._remember(key, data)
        response = ChatResponse.from_json(data)
        response.cached = True
        return response

    def put(self, key: str, response: ChatResponse, model: str = "") -> None:
        self._raise_flush_error()  # a scheduled write failed: say so to the writer
        data = response.to_json()
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self._remember(key, data)
        with self._lock:
            self._pending.append((key, model, blob, time.time()))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: write now
            self.flush()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        try:
            self.flush()
        except sqlite3.Error as e:  # raised by the next put (or close), not lost in the loop
            self._flush_error = e

    def _raise_flush_error(self) -> None:
        if self._flush_error is not None:
            error, self._flush_error = self._flush_error, None
            raise error

    def flush(self) -> None:
        """Write every pending answer in one transaction."""
        with self._lock:
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT OR REPLACE INTO calls (key, model, response, created) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._pending[:0] = rows  # kept for the next attempt
                raise

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._conn.close()
        self._raise_flush_error()

    def _remember(self, key: str, data: dict[str, Any]) -> None:
        if len(self._memory) >= self._memory_items:
            # Drop the oldest entry (dicts keep insertion order): a cheap bounded memory layer.
            self._memory.pop(next(iter(self._memory)))
        self._memory[key] = data

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
