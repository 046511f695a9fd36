"""The SQLite backend: converted Spider files on disk, one in-memory copy per episode.

An episode's copy is made with SQLite's backup API (well under a millisecond for these
databases), so writes never reach the file or the next episode. Every connection, the episode's
and the pristine one that gold queries and descriptions use, is confined by
`lbi.envs.sqlite_guard`: an allow-list authorizer (no ATTACH, VACUUM INTO, virtual tables,
`fts3_tokenizer`, `load_extension` or PRAGMA writes), a statement deadline, and caps on value
size and on how far the copy may grow.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from lbi.envs.sql.common import ColumnInfo, Result, SqlError, TableInfo, digest_tables, fetch
from lbi.envs.sqlite_guard import Guard, GuardError, Limits, guard


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Guarded:
    """A guarded connection with a fetch cap; shared by episodes and gold runs."""

    def __init__(self, conn: sqlite3.Connection, timeout_s: float, fetch_cap: int) -> None:
        self.conn = conn
        self.fetch_cap = fetch_cap
        self.guard: Guard = guard(conn, Limits(timeout_s=timeout_s))

    def execute(self, sql: str) -> Result:
        try:
            with self.guard.deadline():
                return fetch(self.conn.execute(sql), self.fetch_cap)
        except GuardError as e:
            raise SqlError(str(e)) from None

    def tables(self) -> list[str]:
        cur = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return [r[0] for r in cur.fetchall()]


class SqliteEpisode(_Guarded):
    def __init__(self, path: Path, timeout_s: float, fetch_cap: int) -> None:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            src.backup(conn)
        finally:
            src.close()
        super().__init__(conn, timeout_s, fetch_cap)

    def digest(self) -> str:
        tables: dict[str, tuple[list[str], list[Any]]] = {}
        for name in self.tables():
            cur = self.conn.execute(f"SELECT * FROM {_quote(name)}")
            tables[name] = ([d[0] for d in cur.description], cur.fetchall())
        return digest_tables(tables)

    def interrupt(self) -> None:
        """Stop the statement running in another thread now (SQLite's thread-safe interrupt)."""
        self.conn.interrupt()

    def close(self) -> None:
        self.conn.close()


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, files: dict[str, Path], timeout_s: float, fetch_cap: int) -> None:
        self.files = files
        self.timeout_s = timeout_s
        self.fetch_cap = fetch_cap
        self.label = f"SQLite {sqlite3.sqlite_version}"
        self.max_concurrency = 8

    def _pristine(self, db: str) -> _Guarded:
        conn = sqlite3.connect(f"file:{self.files[db]}?mode=ro", uri=True, check_same_thread=False)
        return _Guarded(conn, self.timeout_s, self.fetch_cap)

    def run_gold(self, db: str, sql: str) -> Result:
        g = self._pristine(db)
        try:
            g.fetch_cap = 10**9  # gold is trusted: keep every row for the comparison
            return g.execute(sql)
        finally:
            g.conn.close()

    def open_episode(self, db: str) -> SqliteEpisode:
        return SqliteEpisode(self.files[db], self.timeout_s, self.fetch_cap)

    def describe(self, db: str) -> list[TableInfo]:
        g = self._pristine(db)
        try:
            return [self._table(g.conn, name) for name in g.tables()]
        finally:
            g.conn.close()

    @staticmethod
    def _table(conn: sqlite3.Connection, name: str) -> TableInfo:
        q = _quote(name)
        cols = [
            ColumnInfo(r[1], r[2] or "ANY", r[5] > 0)
            for r in conn.execute(f"PRAGMA table_info({q})")
        ]
        fks = [(r[3], r[2], r[4]) for r in conn.execute(f"PRAGMA foreign_key_list({q})")]
        sample = [tuple(r) for r in conn.execute(f"SELECT * FROM {q} LIMIT 3")]
        (count,) = conn.execute(f"SELECT count(*) FROM {q}").fetchone()
        return TableInfo(name, cols, fks, sample, count)

    def close(self) -> None:
        """Nothing is held between calls: each pristine read opens and closes its own connection."""
