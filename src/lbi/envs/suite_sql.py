"""The SQL a suite file's checks run, and its validation before any episode.

A check's query runs on a SQLite file or an SQLAlchemy URL (`query`). Before the first model
call, `SqlChecker.compile` prepares each SQLite query against a copy of its database in memory,
with the task's `db_fixture` applied first (a fixture may create the tables the check reads):
a missing table or column is found then, not when the first episode is scored, and the user's
database is never written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def query(db: str, sql: str) -> list[tuple[Any, ...]]:
    if "://" in db:
        import sqlalchemy

        engine = sqlalchemy.create_engine(db)
        try:
            with engine.connect() as sa_conn:
                return [tuple(r) for r in sa_conn.execute(sqlalchemy.text(sql))]
        finally:
            engine.dispose()
    conn = sqlite3.connect(db, timeout=30)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


class SqlChecker:
    """In-memory copies of the databases a suite's checks read, one per (database, fixture)."""

    def __init__(self) -> None:
        self._copies: dict[tuple[str, str], sqlite3.Connection] = {}

    def _copy(self, db: str, fixture: str) -> sqlite3.Connection:
        key = (db, fixture)
        if key not in self._copies:
            mem = sqlite3.connect(":memory:")
            if Path(db).is_file():
                src = sqlite3.connect(Path(db).resolve().as_uri() + "?mode=ro", uri=True)
                try:
                    src.backup(mem)
                finally:
                    src.close()
            if fixture:
                mem.executescript(fixture)
            self._copies[key] = mem
        return self._copies[key]

    def compile(self, db: str, sql: str, fixture: str = "") -> str | None:
        """Why `sql` cannot run on `db` (after `fixture`), or None when it prepares."""
        if "://" in db:
            return None  # a server's schema is not copied; its queries are checked when scored
        if not fixture and not Path(db).is_file():
            return f"database {db} does not exist"
        try:
            self._copy(db, fixture).execute("EXPLAIN " + sql)  # prepares, runs nothing
        except sqlite3.Error as e:
            return f"{type(e).__name__}: {e}"
        return None

    def close(self) -> None:
        for conn in self._copies.values():
            conn.close()
        self._copies.clear()
