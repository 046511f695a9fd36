"""Confinement for SQLite connections that run SQL an agent wrote (the `sql` env, the MCP server).

`guard(conn, limits)` sets three things before the agent's first statement, none of them
reachable from SQL afterwards:

- an allow-list authorizer: plain reads and writes of tables, views, indexes and triggers in the
  main database, the built-in scalar/aggregate/window/date/math/JSON functions, and a few
  read-only PRAGMAs. Everything else is refused, notably `fts3_tokenizer` (with Debian's
  ENABLE_FTS3_TOKENIZER it leaks a library address and, given a forged pointer, crashes the
  process), virtual tables, ATTACH/DETACH and VACUUM (VACUUM INTO writes a file anywhere),
  `load_extension`, temporary objects (the temp schema has no size cap) and PRAGMA writes;
- a deadline: a progress handler interrupts a statement that runs past `timeout_s`;
- size limits: `Connection.setlimit` caps one value, one statement and nesting, and
  `PRAGMA max_page_count` (set here, and then unchangeable because PRAGMA writes are refused)
  caps how far the database may grow.

Errors come back from `Guard.run` as `GuardError` with a message meant for the agent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_PROGRESS_OPS = 2000  # VM instructions between deadline checks: ~0.1 ms of work

# SQLite's built-in core, aggregate, window, date, math and JSON functions. Left out:
# fts3_tokenizer, load_extension, the fts3/fts5/rtree helpers, sqlite_log, sqlite_compileoption_*.
ALLOWED_FUNCTIONS = frozenset({
    "abs", "changes", "char", "coalesce", "format", "glob", "hex", "ifnull", "iif", "instr",
    "last_insert_rowid", "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min",
    "nullif", "printf", "quote", "random", "randomblob", "replace", "round", "rtrim", "sign",
    "soundex", "sqlite_source_id", "sqlite_version", "substr", "substring", "total_changes",
    "trim", "typeof", "unicode", "unlikely", "upper", "zeroblob", "avg", "count", "group_concat",
    "sum", "total", "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead",
    "nth_value", "ntile", "percent_rank", "rank", "row_number", "date", "time", "datetime",
    "julianday", "unixepoch", "strftime", "current_date", "current_time", "current_timestamp",
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh",
    "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power",
    "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc", "json", "json_array",
    "json_array_length", "json_extract", "json_group_array", "json_group_object", "json_insert",
    "json_object", "json_patch", "json_quote", "json_remove", "json_replace", "json_set",
    "json_type", "json_valid", "->", "->>",
})  # fmt: skip
# PRAGMAs that only read; these may name a table or index as their argument.
QUERY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
})  # fmt: skip
# PRAGMAs whose argument would set a value: allowed only without one (a read).
VALUE_PRAGMAS = frozenset({
    "page_count", "page_size", "max_page_count", "freelist_count", "encoding", "foreign_keys",
    "user_version", "schema_version", "collation_list",
})  # fmt: skip

_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT, sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_DROP_VIEW,
    sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_REINDEX,
    sqlite3.SQLITE_ANALYZE,
}  # fmt: skip
_TEMP_ACTIONS = {
    sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX,
    sqlite3.SQLITE_CREATE_TEMP_VIEW, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
    sqlite3.SQLITE_DROP_TEMP_TABLE, sqlite3.SQLITE_DROP_TEMP_INDEX, sqlite3.SQLITE_DROP_TEMP_VIEW,
    sqlite3.SQLITE_DROP_TEMP_TRIGGER,
}  # fmt: skip
_NAMED = {
    sqlite3.SQLITE_ATTACH: "ATTACH and VACUUM (including VACUUM INTO)",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP of a virtual table",
}


class GuardError(Exception):
    """A statement failed or was refused; the message is what the agent sees."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    max_value_bytes: int = 1_000_000  # one string, blob or row (SQLITE_LIMIT_LENGTH)
    max_sql_bytes: int = 100_000  # one statement's text (SQLITE_LIMIT_SQL_LENGTH)
    growth_bytes: int = 64 << 20  # how much the database may grow past its size when guarded


def _setlimits(conn: sqlite3.Connection, limits: Limits) -> None:
    for which, value in (
        (sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes),
        (sqlite3.SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_bytes),
        (sqlite3.SQLITE_LIMIT_ATTACHED, 0),
        (sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 200),
        (sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, 100),
        (sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000),
        (sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH, 10),
        (sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0),
    ):
        conn.setlimit(which, min(value, conn.getlimit(which)))


class Guard:
    """One guarded connection: `run` executes a statement under the deadline."""

    def __init__(
        self, conn: sqlite3.Connection, limits: Limits, max_db_bytes: int | None = None
    ) -> None:
        self.conn = conn
        self.limits = limits
        self.denied = ""
        self._deadline = float("inf")
        _setlimits(conn, limits)
        if hasattr(conn, "enable_load_extension"):
            conn.enable_load_extension(False)
        # Schema objects (views, triggers, CHECKs) may only call functions marked innocuous.
        conn.execute("PRAGMA trusted_schema = OFF")
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        if max_db_bytes is None:
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            max_db_bytes = pages * page_size + limits.growth_bytes
        self.max_db_bytes = max_db_bytes
        conn.execute(f"PRAGMA max_page_count = {max(1, max_db_bytes // page_size)}")
        conn.set_progress_handler(self._tick, _PROGRESS_OPS)
        conn.set_authorizer(self._authorize)

    def _tick(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
    ) -> int:
        why = _refusal(action, arg1, arg2)
        if why:
            self.denied = why
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    @contextmanager
    def deadline(self) -> Iterator[None]:
        """Run the block under the time limit; sqlite3 errors become GuardError for the agent."""
        self._deadline = time.monotonic() + self.limits.timeout_s
        self.denied = ""
        try:
            yield
        except sqlite3.Warning as e:  # "You can only execute one statement at a time."
            raise GuardError(str(e)) from None
        except sqlite3.Error as e:
            raise GuardError(self.explain(e)) from None
        finally:
            self._deadline = float("inf")

    def run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.deadline():
            return self.conn.execute(sql, params)

    def explain(self, e: sqlite3.Error) -> str:
        text = str(e)
        if text == "interrupted" and time.monotonic() > self._deadline:
            return f"statement stopped: it ran longer than the {self.limits.timeout_s:g} s limit"
        if text.startswith("not authorized") or text == "authorization denied":
            return f"not authorized: {self.denied or 'this statement'} is disabled here"
        if isinstance(e, sqlite3.DataError) or "too big" in text or "too long" in text:
            return f"{text} (a value is limited to {self.limits.max_value_bytes:,} bytes and a statement to {self.limits.max_sql_bytes:,})"
        if "database or disk is full" in text:
            return f"{text} (this database is limited to {self.max_db_bytes >> 20} MB)"
        return text


def _refusal(action: int, arg1: str | None, arg2: str | None) -> str:
    """Why `action` is refused, or '' when it is allowed."""
    if action in _ALLOWED_ACTIONS:
        return ""
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        return "" if name in ALLOWED_FUNCTIONS else f"the function {name}()"
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in QUERY_PRAGMAS or (name in VALUE_PRAGMAS and arg2 is None):
            return ""
        return f"PRAGMA {name}" + (f" = {arg2}" if arg2 is not None else "")
    if action in _TEMP_ACTIONS:
        return "a TEMP table, view, index or trigger"
    return _NAMED.get(action, f"this statement (authorizer action {action})")


def guard(
    conn: sqlite3.Connection, limits: Limits | None = None, max_db_bytes: int | None = None
) -> Guard:
    """Confine `conn`: set its limits and page cap, then install the deadline and authorizer.

    Set any PRAGMA of your own before calling this: afterwards PRAGMA writes are refused.
    Without `max_db_bytes` the database may grow `limits.growth_bytes` past its present size.
    """
    return Guard(conn, limits or Limits(), max_db_bytes)
