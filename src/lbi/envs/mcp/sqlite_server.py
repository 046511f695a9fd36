"""A small MCP server over a SQLite file, shipped so the `mcp` environment has something real
to talk to offline: tools that read and write a lending-library database, server
instructions, a documentation resource, a digest tool for state-based checks, and a reset
tool so every episode starts from the same rows.

    python -m lbi.envs.mcp.sqlite_server --db PATH [--http PORT]

Without --http it speaks MCP over stdio; with it, streamable HTTP on 127.0.0.1:PORT/mcp.

Every statement that carries the agent's SQL or values runs on a connection confined by
`lbi.envs.sqlite_guard` (allow-list authorizer, a deadline of --timeout-s seconds, value and
database size caps), and the process caps SQLite's heap, so a hostile query can neither write a
file, nor crash or starve the server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from lbi.envs.sqlite_guard import Guard, GuardError, Limits, guard

SCHEMA = """
CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL,
                    year INTEGER, copies INTEGER NOT NULL DEFAULT 1);
CREATE TABLE loans (id INTEGER PRIMARY KEY, book_id INTEGER NOT NULL REFERENCES books(id),
                    member_id INTEGER NOT NULL REFERENCES members(id), due TEXT NOT NULL,
                    returned INTEGER NOT NULL DEFAULT 0);
"""

SEED: dict[str, list[tuple[Any, ...]]] = {
    "members": [
        (1, "Ada Byron", "ada@example.org"),
        (2, "Alan Turing", "alan@example.org"),
        (3, "Grace Hopper", "grace@example.org"),
    ],
    "books": [
        (1, "Dune", "Frank Herbert", 1965, 2),
        (2, "Neuromancer", "William Gibson", 1984, 1),
        (3, "Foundation", "Isaac Asimov", 1951, 3),
        (4, "Hyperion", "Dan Simmons", 1989, 1),
    ],
    "loans": [(1, 1, 1, "2025-01-10", 0), (2, 3, 2, "2025-01-12", 1)],
}
HEAP_LIMIT_BYTES = 256 << 20  # all of SQLite's memory in this process (PRAGMA hard_heap_limit)

INSTRUCTIONS = (
    "This server manages a small lending library stored in SQLite (tables members, books, "
    "loans). Inspect the schema with list_tables and describe_table, read with query "
    "(SELECT only), and change data with insert_row, update_rows and delete_rows. "
    "Read docs://guide for the rules of the library."
)

GUIDE = """# Library database guide

## Tables
- `members(id, name, email)`: people who may borrow books; `email` is unique.
- `books(id, title, author, year, copies)`: `copies` is how many copies the library owns.
- `loans(id, book_id, member_id, due, returned)`: one row per loan; `due` is an ISO date
  (YYYY-MM-DD) and `returned` is 0 while the book is out, 1 once it is back.

## Reading
Use `query` with one SELECT statement. The connection is read-only, so any statement that
changes data fails there: use the writing tools instead. A statement that runs longer than a
few seconds is stopped, and ATTACH, VACUUM, virtual tables and PRAGMA writes are refused.

## Writing
- `insert_row(table, values)` adds one row; leave out `id` to get the next free id.
- `update_rows(table, values, where)` sets `values` on every row whose columns equal `where`.
- `delete_rows(table, where)` removes the rows whose columns equal `where`.
An empty `where` is refused, so a whole table cannot be changed by accident.

## Lending rules
A loan is made by inserting a `loans` row with `returned` 0 and a due date. Returning a book
sets `returned` to 1 on its loan. Never delete loans: they are the library's history.
"""


def create_db(path: str | Path) -> None:
    """Write the seed database to `path`, replacing whatever is there."""
    p = Path(path)
    p.unlink(missing_ok=True)
    with sqlite3.connect(p) as conn:
        _load_seed(conn)
    conn.close()


def _load_seed(conn: sqlite3.Connection) -> None:
    for table in ("loans", "books", "members"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.executescript(SCHEMA)
    for table, rows in SEED.items():
        marks = ",".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


class Library:
    """The tools' logic, kept apart from MCP so identifiers are checked in one place."""

    def __init__(self, path: str | Path, timeout_s: float = 5.0) -> None:
        self.path = str(path)
        if not Path(self.path).exists():
            create_db(self.path)
        self.limits = Limits(timeout_s=timeout_s)
        # A fixed cap: each write opens a new connection, so "growth past now" would accumulate.
        self.max_db_bytes = Path(self.path).stat().st_size + self.limits.growth_bytes

    def _guarded(self, conn: sqlite3.Connection) -> Guard:
        return guard(conn, self.limits, self.max_db_bytes)

    def tables(self) -> list[str]:
        with self._ro() as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            out = [r[0] for r in rows]
        conn.close()
        return out

    def _ro(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def columns(self, table: str) -> list[dict[str, Any]]:
        if table not in self.tables():
            raise ToolError(f"no table {table!r}; tables: {', '.join(self.tables())}")
        with self._ro() as conn:
            rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
        conn.close()
        return [
            {"name": r[1], "type": r[2], "not_null": bool(r[3]), "primary_key": bool(r[5])}
            for r in rows
        ]

    def _check(self, table: str, names: list[str]) -> None:
        known = {c["name"] for c in self.columns(table)}
        bad = [n for n in names if n not in known]
        if bad:
            raise ToolError(
                f"unknown column(s) {', '.join(bad)} in {table}; columns: {', '.join(sorted(known))}"
            )

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run the agent's statement on a read-only, guarded connection."""
        conn = self._ro()
        try:
            g = self._guarded(conn)
            with g.deadline():
                cur = conn.execute(sql)
                names = [d[0] for d in cur.description or []]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchmany(200)]
        except GuardError as e:
            raise ToolError(f"SQL error: {e}") from None
        finally:
            conn.close()
        return rows

    def write(self, sql: str, params: list[Any]) -> tuple[int, int | None]:
        """Run one statement in autocommit mode; returns (rows changed, last row id)."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys=ON")  # before the guard, which refuses PRAGMA writes
            cur = self._guarded(conn).run(sql, params)
            return cur.rowcount, cur.lastrowid
        except GuardError as e:
            raise ToolError(f"SQL error: {e}") from None
        finally:
            conn.close()

    def digest(self) -> str:
        h = hashlib.sha256()
        with self._ro() as conn:
            for table in self.tables():
                rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                h.update(json.dumps([table, rows], default=str).encode())
        conn.close()
        return h.hexdigest()[:16]

    def reset(self) -> None:
        create_db(self.path)


def build_server(db: str | Path, test_tools: bool = False, timeout_s: float = 5.0) -> MCPServer:
    lib = Library(db, timeout_s)
    server: MCPServer = MCPServer("lbi-sqlite", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool()
    def list_tables() -> list[str]:
        """List the tables in the library database."""
        return lib.tables()

    @server.tool()
    def describe_table(table: str) -> list[dict[str, Any]]:
        """Describe a table's columns: name, SQL type, whether it is required and the key."""
        return lib.columns(table)

    @server.tool()
    def query(sql: str) -> list[dict[str, Any]]:
        """Run one read-only SELECT statement and return up to 200 rows as objects."""
        return lib.query(sql)

    @server.tool()
    def insert_row(table: str, values: dict[str, Any]) -> dict[str, int]:
        """Insert one row; `values` maps column names to values (omit id for the next one)."""
        lib._check(table, list(values))
        if not values:
            raise ToolError("values must name at least one column")
        cols = ", ".join(values)
        marks = ", ".join("?" * len(values))
        _, rowid = lib.write(
            f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(values.values())
        )
        return {"inserted_id": int(rowid or 0)}

    @server.tool()
    def update_rows(table: str, values: dict[str, Any], where: dict[str, Any]) -> dict[str, int]:
        """Set `values` on every row of `table` whose columns equal `where` (not empty)."""
        lib._check(table, [*values, *where])
        if not values or not where:
            raise ToolError("values and where must both name at least one column")
        sets = ", ".join(f"{c} = ?" for c in values)
        conds = " AND ".join(f"{c} = ?" for c in where)
        n, _ = lib.write(
            f"UPDATE {table} SET {sets} WHERE {conds}", [*values.values(), *where.values()]
        )
        return {"updated": n}

    @server.tool()
    def delete_rows(table: str, where: dict[str, Any]) -> dict[str, int]:
        """Delete the rows of `table` whose columns equal `where` (not empty)."""
        lib._check(table, list(where))
        if not where:
            raise ToolError("where must name at least one column")
        conds = " AND ".join(f"{c} = ?" for c in where)
        n, _ = lib.write(f"DELETE FROM {table} WHERE {conds}", list(where.values()))
        return {"deleted": n}

    @server.tool()
    def state_digest() -> str:
        """A short hash of every row in every table (for state-based checks)."""
        return lib.digest()

    @server.tool()
    def reset_database() -> str:
        """Restore the seed rows, dropping every change."""
        lib.reset()
        return "reset"

    if test_tools:  # misbehaving tools, for testing how clients cope

        @server.tool()
        async def sleep(seconds: float) -> str:
            """Wait `seconds` seconds, then answer."""
            await anyio.sleep(seconds)
            return "awake"

        @server.tool()
        def crash() -> str:
            """Raise an unexpected exception."""
            raise RuntimeError("the crash tool crashed, as asked")

    @server.resource("docs://guide", name="guide", mime_type="text/markdown")
    def guide() -> str:
        """How the library database is organised and the rules for changing it."""
        return GUIDE

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--db", required=True, help="SQLite file (created with seed rows if missing)"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=5.0, help="stop an SQL statement after this long"
    )
    parser.add_argument("--test-tools", action="store_true", help="add the sleep and crash tools")
    parser.add_argument(
        "--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT"
    )
    args = parser.parse_args(argv)
    # Process-wide, so only here: this process does nothing but serve one database.
    probe = sqlite3.connect(":memory:")
    probe.execute(f"PRAGMA hard_heap_limit = {HEAP_LIMIT_BYTES}")
    probe.close()
    server = build_server(args.db, test_tools=args.test_tools, timeout_s=args.timeout_s)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
