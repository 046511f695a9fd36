"""Benchmark tasks for a datasette site, generated from the SQLite file it serves.

Every answer is computed from the database with SQL, and every check reads either the
database (an answer must equal what SQL says) or the page the agent left open (a filter must
show exactly the matching rows). So the suite works on our demo shop and equally on any
Spider database passed with `env_options.site.db`. Reference solutions navigate by URL and
answer with `send_msg_to_user`, which replays identically on every run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from lbi.types import Task

MAX_TABLES = 4
MAX_PAGE_ROWS = 100  # datasette shows 100 rows per page; a filter check must see them all


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: sqlite3.Connection, table: str) -> list[tuple[str, str, bool]]:
    """(name, declared type, is primary key) per column."""
    return [
        (r[1], (r[2] or "").upper(), bool(r[5]))
        for r in con.execute(f"PRAGMA table_info({_q(table)})")
    ]


def _task(
    name: str, instruction: str, gold: dict[str, Any], reference: list[str], path: str = "/"
) -> Task:
    return Task(
        env="site",
        name=name,
        instruction=instruction,
        setup={"path": path},
        origin="benchmark",
        gold=gold,
        reference=reference,
    )


def _table_tasks(con: sqlite3.Connection, db: str, table: str, base: str) -> list[Task]:
    page = f"/{quote(db)}/{quote(table)}"
    n = con.execute(f"SELECT COUNT(*) FROM {_q(table)}").fetchone()[0]
    tasks = [
        _task(
            f"{table}-open",
            f"Open the page that lists the rows of the table {table}.",
            {"url_path": page},
            [f"goto({base + page!r})"],
        ),
        _task(
            f"{table}-count",
            f"How many rows does the table {table} have? Send the number to the user.",
            {"answer": str(n)},
            [f"goto({base + page!r})", f"send_msg_to_user({str(n)!r})"],
        ),
    ]
    cols = _columns(con, table)
    text_cols = [c for c, t, pk in cols if not pk and ("CHAR" in t or "TEXT" in t or t == "")]
    num_cols = [
        c
        for c, t, pk in cols
        if not pk and ("INT" in t or "REAL" in t or "NUM" in t or "FLOA" in t)
    ]
    if text_cols:
        col = text_cols[-1]
        row = con.execute(
            f"SELECT {_q(col)}, COUNT(*) FROM {_q(table)} WHERE {_q(col)} IS NOT NULL AND {_q(col)} != '' "
            f"GROUP BY {_q(col)} HAVING COUNT(*) <= {MAX_PAGE_ROWS} ORDER BY COUNT(*) DESC, 1 LIMIT 1"
        ).fetchone()
        if row:
            value, count = str(row[0]), int(row[1])
            url = f"{base}{page}?{urlencode({col: value})}"
            tasks.append(
                _task(
                    f"{table}-filter",
                    f'Show only the rows of the table {table} whose {col} is "{value}".',
                    {"filter": {"path": page, "column": col, "value": value, "count": count}},
                    [f"goto({url!r})"],
                )
            )
    if text_cols and num_cols:
        label, num = text_cols[0], num_cols[-1]
        top = con.execute(
            f"SELECT {_q(label)}, {_q(num)} FROM {_q(table)} WHERE {_q(num)} IS NOT NULL "
            f"ORDER BY {_q(num)} DESC LIMIT 2"
        ).fetchall()
        if len(top) == 2 and top[0][1] != top[1][1]:  # a unique maximum, or the answer is ambiguous
            url = f"{base}{page}?{urlencode({'_sort_desc': num})}"
            tasks.append(
                _task(
                    f"{table}-max",
                    f"In the table {table}, which {label} has the largest {num}? Send it to the user.",
                    {"answer": str(top[0][0])},
                    [f"goto({url!r})", f"send_msg_to_user({str(top[0][0])!r})"],
                )
            )
    return tasks


def suite_from_db(db: Path, base: str) -> list[Task]:
    """Tasks over the first tables of `db`, served by datasette at `base` (no trailing /)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        tasks: list[Task] = []
        for t in tables[:MAX_TABLES]:
            tasks += _table_tasks(con, db.stem, t, base)
        return tasks
    finally:
        con.close()


def same_answer(said: str, want: str) -> bool:
    """Case-, space- and trailing-period-insensitive; numbers compare as numbers."""
    a, b = said.strip().rstrip(".").strip().lower(), want.strip().lower()
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b
