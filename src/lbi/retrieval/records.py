"""The records behind an index's ids, in a SQLite file beside it.

An index of a million examples used to hold a million pydantic records in memory and parse
them all from JSON Lines to load (2.4 s and ~50 MB per 10k toy examples; web observations are
far larger). Retrieval needs ten records a step, so they live in a table keyed by id: `get`
reads one row, loading opens a file.

- A fresh table is a private temporary file (deleted when the table is closed or collected);
  `save_to` copies it into an index folder with SQLite's online backup.
- A loaded table is opened read-only: the folder it came from is replaced whole by the next save
  (`atomic_dir`), never written in place. The first `put` into a loaded table copies it to a
  private file first.
- One connection, guarded by a lock: agents on several threads share an index.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

from lbi.retrieval.errors import RetrievalError
from lbi.types import Doc, Example, Record, Trajectory

KINDS: dict[str, type[Record]] = {c.kind: c for c in (Example, Doc, Trajectory)}
FILE = "records.sqlite"
_SCHEMA = "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, kind TEXT, data TEXT)"


def _private() -> tuple[sqlite3.Connection, Path]:
    fd, name = tempfile.mkstemp(prefix="lbi-records-", suffix=".sqlite")
    os.close(fd)
    conn = sqlite3.connect(name, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=OFF")  # scratch: saved by backup, never read after a crash
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(_SCHEMA + " WITHOUT ROWID")
    return conn, Path(name)


def _drop(conn: sqlite3.Connection, path: Path | None) -> None:
    conn.close()
    if path is not None:
        path.unlink(missing_ok=True)


class RecordTable:
    def __init__(self, conn: sqlite3.Connection | None = None, readonly: bool = False) -> None:
        self._temp: Path | None = None
        if conn is None:
            conn, self._temp = _private()
        self._conn = conn
        self._readonly = readonly
        self._lock = threading.Lock()
        self._count = int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        self._finalizer = weakref.finalize(self, _drop, conn, self._temp)

    @classmethod
    def open(cls, folder: Path) -> RecordTable:
        path = folder / FILE
        if not path.is_file():
            raise RetrievalError(f"no {FILE} in the index in {folder}; rebuild the index")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            return cls(conn, readonly=True)
        except sqlite3.Error as e:
            raise RetrievalError(f"cannot read the records of the index in {folder}: {e}") from None

    def __len__(self) -> int:
        return self._count

    def put(self, records: Iterable[Record]) -> None:
        rows = [(r.id, r.kind, r.model_dump_json()) for r in records]
        if not rows:
            return
        with self._lock:
            if self._readonly:
                self._copy_to_private()
            with self._conn:
                cur = self._conn.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?)", rows)
            self._count += max(cur.rowcount, 0)  # rows inserted (ignored repeats not counted)

    def get(self, record_id: str) -> Record | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT kind, data FROM records WHERE id = ?", (record_id,)
            ).fetchone()
        if row is None:
            return None
        return KINDS[row[0]].model_validate_json(row[1])

    def save_to(self, path: Path) -> None:
        """Copy every record into a new SQLite file at `path`."""
        dest = sqlite3.connect(path)
        try:
            with self._lock:
                self._conn.backup(dest)
        finally:
            dest.close()

    def close(self) -> None:
        self._finalizer()

    def _copy_to_private(self) -> None:
        conn, temp = _private()
        self._conn.backup(conn)
        self._finalizer()
        self._conn, self._temp, self._readonly = conn, temp, False
        self._finalizer = weakref.finalize(self, _drop, conn, temp)
