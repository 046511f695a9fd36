"""The run store: one SQLite database per run, records keyed by content-hash id.

Every stage reads its inputs and writes its outputs (records plus "done" marks) in one
transaction, so a run killed at any moment and restarted with the same command finishes,
loses nothing and duplicates nothing. WAL mode keeps readers and the writer out of each
other's way.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from lbi.sqlite_wal import is_busy, open_wal
from lbi.types import Record

R = TypeVar("R", bound=Record)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
  UNIQUE(kind, id));
CREATE TABLE IF NOT EXISTS marks (stage TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY(stage, key));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS verdict_example ON records(json_extract(data, '$.example_id'), id)
  WHERE kind = 'verdict';
"""
PAGE = 500  # records read per query by the iterators
# The (kind, field) pairs `iter_by` can walk in order: each has an index above.
_INDEXED = {("verdict", "example_id"): "verdict_example"}

DB_NAME = "run.sqlite"


class StoreError(RuntimeError):
    """A run's store is missing or damaged: one line that names the file and what to do."""


def write_problem(error: sqlite3.OperationalError) -> str | None:
    """What a failed SQLite write means to a user and what to do, for the faults that are no
    bug: another process holds the file's write lock past the busy timeout, the disk is full,
    or the disk failed the write. SQLite rolled the transaction back, so nothing is torn."""
    code = error.sqlite_errorcode & 0xFF
    if is_busy(error):
        return "is locked by another process: when it is done, rerun the same command to resume"
    if code == sqlite3.SQLITE_FULL:
        return "cannot grow, the disk is full: free some space and rerun the same command to resume"
    if code == sqlite3.SQLITE_IOERR:
        return f"could not be written ({error}): check the disk and rerun the same command"
    return None


def damaged(path: Path, why: str) -> StoreError:
    return StoreError(
        f"{path} {why}: the run {path.parent.name!r} cannot be read. Restore the file from a "
        f"backup, or remove {path.parent}/ and start again with --run NEW"
    )


class RunStore:
    def __init__(self, root: str | Path, create: bool = True) -> None:
        """Open the run's database; `create` makes it (and its folder) when there is none.

        A missing (when not creating), empty or unreadable file is a StoreError here, where the
        store opens, so no command gets as far as a traceback from deep inside a read."""
        self.root = Path(root)
        self.path = self.root / DB_NAME
        # A folder with a run's other files (config.yaml, report/) but no store, or an empty
        # one, lost it: a new store would hide that. (Alone, an empty file is a store that a
        # concurrent opener is creating right now.)
        settled = not create or (
            self.root.is_dir() and any(not p.name.startswith(DB_NAME) for p in self.root.iterdir())
        )
        if settled and not self.path.is_file():
            raise damaged(self.path, "is missing")
        if settled and self.path.stat().st_size == 0:
            raise damaged(self.path, "is empty (0 bytes)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = open_wal(self.path, _SCHEMA)
            self._conn.execute("SELECT count(*) FROM records").fetchone()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and is_busy(e):
                raise
            raise damaged(self.path, f"is damaged ({e})") from None

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a lock held elsewhere or a full disk is a one-line StoreError
        (nothing of the transaction is kept, so the same command reruns it)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as e:
                # SQLite may have rolled back already (SQLITE_FULL does): ROLLBACK would fail.
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                why = write_problem(e) if isinstance(e, sqlite3.OperationalError) else None
                if why is None:
                    raise
                raise StoreError(f"{self.path} {why} (finished work is kept)") from None

    def put(
        self,
        records: Iterable[Record] = (),
        marks: Iterable[tuple[str, str]] = (),
        replace: bool = False,
        meta: dict[str, Any] | None = None,
        drop: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Write records, done-marks and meta, and delete the `drop` records (kind, id),
        atomically. Existing ids are kept unless `replace`."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        rows = [(r.kind, r.id, r.model_dump_json()) for r in records]
        with self.transaction() as c:
            c.executemany("DELETE FROM records WHERE kind=? AND id=?", list(drop))
            if replace:
                # Keep the original position of a replaced record so listings stay stable.
                for kind, rid, data in rows:
                    cur = c.execute(
                        "UPDATE records SET data=? WHERE kind=? AND id=?", (data, kind, rid)
                    )
                    if cur.rowcount == 0:
                        c.execute(
                            "INSERT INTO records(kind, id, data) VALUES (?,?,?)", (kind, rid, data)
                        )
            else:
                c.executemany(f"{verb} INTO records(kind, id, data) VALUES (?,?,?)", rows)
            c.executemany("INSERT OR IGNORE INTO marks(stage, key) VALUES (?,?)", list(marks))
            for k, v in (meta or {}).items():
                c.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)", (k, json.dumps(v))
                )

    # -- reads ----------------------------------------------------------------------------
    def get(self, cls: type[R], rid: str) -> R | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM records WHERE kind=? AND id=?", (cls.kind, rid)
            ).fetchone()
        return cls.model_validate_json(row[0]) if row else None

    def all(self, cls: type[R]) -> list[R]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM records WHERE kind=? ORDER BY seq", (cls.kind,)
            ).fetchall()
        return [cls.model_validate_json(r[0]) for r in rows]

    def iter(self, cls: type[R], page: int = PAGE) -> Iterator[R]:
        """Every record of `cls` in id order, read `page` at a time, so memory stays at one page
        whatever the run's size. Pages are separate queries (no cursor is held between them), so
        a writer in between is not blocked; a record added behind the walk is not seen."""
        after = ""
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT id, data FROM records WHERE kind=? AND id>? ORDER BY id LIMIT ?",
                    (cls.kind, after, page),
                ).fetchall()
            for _, data in rows:
                yield cls.model_validate_json(data)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def iter_by(self, cls: type[R], field: str, page: int = PAGE) -> Iterator[R]:
        """Every record of `cls` ordered by `field` (then id), a page at a time, through the
        field's index (only the pairs in `_INDEXED` have one)."""
        if (cls.kind, field) not in _INDEXED:
            raise ValueError(f"no index orders {cls.kind} records by {field}")
        key = f"json_extract(data, '$.{field}')"
        sql = (
            f"SELECT {key}, id, data FROM records INDEXED BY {_INDEXED[cls.kind, field]} "
            f"WHERE kind='{cls.kind}' AND {key} >= ? AND ({key} > ? OR id > ?) "
            f"ORDER BY {key}, id LIMIT ?"
        )  # `key >= ?` alone lets SQLite seek in the index instead of scanning it from the start
        after: tuple[Any, str] = ("", "")
        while True:
            with self._lock:
                rows = self._conn.execute(sql, (after[0], after[0], after[1], page)).fetchall()
            for _, _, data in rows:
                yield cls.model_validate_json(data)
            if len(rows) < page:
                return
            after = (rows[-1][0], rows[-1][1])

    def ids(self, cls: type[Record]) -> set[str]:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM records WHERE kind=?", (cls.kind,)).fetchall()
        return {r[0] for r in rows}

    def fields(self, cls: type[Record], *names: str) -> list[tuple[Any, ...]]:
        """Top-level fields of every record of a kind, without parsing whole records (fast counts)."""
        cols = ", ".join(f"json_extract(data, '$.{n}')" for n in names)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {cols} FROM records WHERE kind=? ORDER BY seq", (cls.kind,)
            ).fetchall()
        return [tuple(r) for r in rows]

    def state(self, *kinds: type[Record]) -> str:
        """The records (of `kinds`, default all) as they are now, in two numbers: the last record
        number and the count. Records only get appended (a replaced one gets a new number, a
        dropped one lowers the count), so an equal state means the same records, read without
        parsing one."""
        where = f"WHERE kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        with self._lock:
            last, count = self._conn.execute(
                f"SELECT max(seq), count(*) FROM records {where}", [k.kind for k in kinds]
            ).fetchone()
        return f"{last or 0}:{count}"

    def count(self, cls: type[Record]) -> int:
        with self._lock:
            return int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM records WHERE kind=?", (cls.kind,)
                ).fetchone()[0]
            )

    # -- marks: which units of work a stage has finished --------------------------------------
    def marked(self, stage: str) -> set[str]:
        with self._lock:
            rows = self._conn.execute("SELECT key FROM marks WHERE stage=?", (stage,)).fetchall()
        return {r[0] for r in rows}

    def mark(self, stage: str, key: str) -> None:
        self.put(marks=[(stage, key)])

    # -- metadata ----------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)", (key, json.dumps(value))
            )

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_runs(run_root: str | Path) -> list[Path]:
    """Run folders: those with a store, and those that lost it (they still hold config.yaml)."""
    root = Path(run_root)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if (p / DB_NAME).is_file() or (p / "config.yaml").is_file()
    )


def store_problem(run_dir: Path) -> str | None:
    """Why a run's store cannot be read (missing, empty, damaged), or None when it reads whole."""
    path = run_dir / DB_NAME
    if not path.is_file():
        return "run.sqlite is missing"
    if path.stat().st_size == 0:
        return "run.sqlite is empty (0 bytes)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            conn.execute("SELECT count(*) FROM records").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return f"run.sqlite is damaged ({e})"
    return None if verdict == "ok" else f"run.sqlite is damaged ({verdict})"
