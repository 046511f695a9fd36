"""What the two database backends share: result and schema records, rendering, the state digest.

A backend (SQLite files, or a MariaDB/MySQL server) gives the environment pristine databases to
describe and to run gold queries on, and opens per-episode copies that the agent may change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from lbi.envs.sql.scoring import Row, normalize_value


class SqlError(Exception):
    """A statement failed; the message is what the agent sees."""


@dataclass
class Result:
    """A statement's outcome. `rows` holds at most the fetch cap; `total` counts all of them."""

    columns: list[str]
    rows: list[Row]
    total: int
    is_query: bool  # False for statements that return no table (INSERT, CREATE, ...)
    rowcount: int = -1

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.total


@dataclass
class ColumnInfo:
    name: str
    type: str
    primary_key: bool = False


@dataclass
class TableInfo:
    name: str
    columns: list[ColumnInfo]
    foreign_keys: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (column, table, column)
    sample: list[Row] = field(default_factory=list)
    row_count: int = 0


class Episode(Protocol):
    def execute(self, sql: str) -> Result: ...

    def digest(self) -> str: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """A source of Spider databases: pristine ones to read, private copies to play in."""

    dialect: str  # sqlglot dialect name of the engine
    label: str  # one line for the guide doc, e.g. "SQLite 3.40"
    max_concurrency: int

    def describe(self, db: str) -> list[TableInfo]: ...

    def run_gold(self, db: str, sql: str) -> Result: ...

    def open_episode(self, db: str) -> Episode: ...

    def close(self) -> None: ...


def fetch(cursor: Any, cap: int) -> Result:
    """Drain an executed DB-API cursor, keeping at most `cap` rows but counting all of them."""
    if cursor.description is None:
        return Result([], [], 0, is_query=False, rowcount=cursor.rowcount)
    columns = [str(d[0]) for d in cursor.description]
    rows: list[Row] = []
    total = 0
    while batch := cursor.fetchmany(512):
        total += len(batch)
        if len(rows) < cap:
            rows.extend(tuple(r) for r in batch[: cap - len(rows)])
    return Result(columns, rows, total, is_query=True)


def _cell(v: Any, width: int) -> str:
    text = "NULL" if v is None else str(normalize_value(v))
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def render(result: Result, max_rows: int, max_chars: int, cell_chars: int = 60) -> str:
    """The observation for a result: a pipe table, truncated, always ending with the row count."""
    if not result.is_query:
        n = result.rowcount
        return "OK" + (f" ({n} row{'s' if n != 1 else ''} affected)" if n >= 0 else "")
    lines = [" | ".join(result.columns)]
    for row in result.rows[:max_rows]:
        lines.append(" | ".join(_cell(v, cell_chars) for v in row))
    shown = len(lines) - 1
    footer = f"({result.total} row{'s' if result.total != 1 else ''})"
    body = "\n".join(lines)
    if len(body) > max_chars:
        body = body[:max_chars].rsplit("\n", 1)[0]
        shown = body.count("\n")
    if shown < result.total:
        footer = f"(showing {shown} of {result.total} rows)"
    return body + "\n" + footer


def digest_tables(tables: dict[str, tuple[list[str], list[Row]]]) -> str:
    """A hash of every table's name, columns and rows (sorted), independent of row order."""
    h = hashlib.sha256()
    for name in sorted(tables, key=str.lower):
        columns, rows = tables[name]
        keyed = sorted(json.dumps([normalize_value(v) for v in r], default=str) for r in rows)
        h.update(json.dumps([name.lower(), columns, keyed], ensure_ascii=False).encode())
    return h.hexdigest()[:16]
