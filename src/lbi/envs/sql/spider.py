"""The Spider-dev data: convert intercode-bench's MySQL dump to one SQLite file per database.

The dump is parsed with sqlglot (read="mysql"), never by hand. MySQL-only parts of each
`CREATE TABLE` are rewritten so SQLite accepts them and behaves like the MySQL original:
text columns get `COLLATE NOCASE` because `utf8mb4_general_ci` compares case-insensitively
(gold queries such as `WHERE pettype = 'cat'` depend on it); inline `KEY`s, key prefix lengths,
the names of `UNIQUE KEY`s and the table options are dropped. Rows go in through
`executemany` with Python values taken from the parsed literals.

Conversion is cached: files are written under a temporary name and renamed when complete, and
a manifest (written last) records the dump's hash, so a killed run never leaves a file that
looks finished and a rerun with the same dump does nothing.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import logging
import os
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from lbi.envs.base import EnvError
from lbi.types import Task

# Bump when the conversion changes, so cached files from an older converter are rebuilt.
CONVERTER_VERSION = 3
MANIFEST = "manifest.json"
_LOCK = threading.Lock()  # env instances made in parallel threads convert once, not N times
_TEXT_TYPES = {
    exp.DataType.Type.TEXT,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.NCHAR,
    exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.MEDIUMTEXT,
    exp.DataType.Type.LONGTEXT,
    exp.DataType.Type.TINYTEXT,
}
_TIME_TYPES = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ}
_REAL_TYPES = {exp.DataType.Type.DECIMAL, exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}


@dataclass(frozen=True)
class SpiderQuery:
    """One row of sql_queries.csv: a question, its gold SQL and the database it runs on."""

    question: str
    gold: str
    db: str


def _asset(name: str) -> Path:
    """Locate a data file inside intercode-bench without importing it (its modules have side effects)."""
    spec = importlib.util.find_spec("intercode")
    if spec is None or not spec.submodule_search_locations:
        raise EnvError("the sql environment needs intercode-bench (pip install 'lbi[sql]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "datasets" / name
    if not path.is_file():
        raise EnvError(f"intercode-bench is installed but has no {name} at {path}")
    return path


def dump_path() -> Path:
    return _asset("spider_dev.sql")


def load_queries() -> list[SpiderQuery]:
    with _asset("sql_queries.csv").open(newline="", encoding="utf-8") as f:
        return [
            SpiderQuery(r["query"].strip(), r["gold"].strip(), r["db"].strip())
            for r in csv.DictReader(f)
        ]


def benchmark_tasks(env: str, databases: list[str]) -> list[Task]:
    """The 23 question/gold pairs as tasks, kept to `databases`; the reference replays the gold."""
    scope = {d.lower() for d in databases}
    return [
        Task(
            env=env,
            instruction=q.question,
            setup={"db": q.db},
            origin="benchmark",
            gold={"sql": q.gold},
            reference=[q.gold, "submit"],
            name=f"spider-dev-{i:02d}-{q.db}",
        )
        for i, q in enumerate(load_queries(), 1)
        if q.db.lower() in scope
    ]


def _rewrite_create(create: exp.Create) -> str:
    """A MySQL CREATE TABLE as SQLite DDL (see the module docstring for what changes and why)."""
    create = create.copy()
    create.set("properties", None)
    schema = create.this
    kept: list[exp.Expression] = []
    for item in schema.expressions:
        if isinstance(item, exp.IndexColumnConstraint):
            continue  # plain KEY/INDEX: an index, not a constraint; SQLite wants CREATE INDEX
        if isinstance(item, exp.UniqueColumnConstraint) and isinstance(item.this, exp.Schema):
            item.this.set("this", None)  # UNIQUE KEY name (...) -> UNIQUE (...)
        for prefix in item.find_all(exp.ColumnPrefix):
            prefix.replace(prefix.this)  # `Year_awarded`(255) -> `Year_awarded`
        if isinstance(item, exp.ColumnDef):
            _rewrite_column(item)
        kept.append(item)
    schema.set("expressions", kept)
    return create.sql(dialect="sqlite")


def _rewrite_column(col: exp.ColumnDef) -> None:
    kind = col.args.get("kind")
    constraints = [
        c
        for c in col.args.get("constraints") or []
        if not isinstance(c.kind, exp.CollateColumnConstraint)
    ]
    if isinstance(kind, exp.DataType) and kind.this in _TEXT_TYPES:
        col.set("kind", exp.DataType.build("TEXT"))
        constraints.append(
            exp.ColumnConstraint(kind=exp.CollateColumnConstraint(this=exp.var("NOCASE")))
        )
    elif isinstance(kind, exp.DataType) and kind.this in _TIME_TYPES:
        col.set("kind", exp.DataType.build("DATETIME"))
    elif isinstance(kind, exp.DataType) and kind.this in _REAL_TYPES:
        # Plain REAL: a DECIMAL column would get NUMERIC affinity and store 10.0 as the integer 10.
        col.set("kind", exp.DataType.build("REAL"))
    col.set("constraints", constraints)


def _value(node: exp.Expression) -> Any:
    """A parsed INSERT literal as the Python value SQLite should store."""
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -_value(node.this)
    if isinstance(node, exp.Boolean):
        return int(node.this)
    if isinstance(node, exp.Literal):
        text = str(node.this)
        if node.is_string:
            return text
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    raise EnvError(f"spider dump: unsupported value {node.sql(dialect='mysql')[:60]!r}")


def _insert(conn: sqlite3.Connection, ins: exp.Insert) -> None:
    target = ins.this
    table = target.this if isinstance(target, exp.Schema) else target
    name = table.name
    columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
    values = ins.expression
    if not isinstance(values, exp.Values):
        raise EnvError(f"spider dump: INSERT into {name} is not a VALUES list")
    rows = [tuple(_value(v) for v in row.expressions) for row in values.expressions]
    if not rows:
        return
    cols = "(" + ", ".join(_quote(c) for c in columns) + ")" if columns else ""
    marks = ", ".join("?" * len(rows[0]))
    conn.executemany(f"INSERT INTO {_quote(name)} {cols} VALUES ({marks})", rows)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_dump(text: str) -> dict[str, list[exp.Expression]]:
    """The dump's CREATE TABLE and INSERT statements, grouped by the database they `USE`."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # LOCK TABLES etc. fall back to Command
    by_db: dict[str, list[exp.Expression]] = {}
    current: str | None = None
    for stmt in sqlglot.parse(text, read="mysql"):
        if isinstance(stmt, exp.Use):
            current = stmt.this.name
            by_db.setdefault(current, [])
        elif (isinstance(stmt, exp.Create) and stmt.kind == "TABLE") or isinstance(
            stmt, exp.Insert
        ):
            if current is None:
                raise EnvError("spider dump: a table appears before any USE statement")
            by_db[current].append(stmt)
    return by_db


def _write_db(path: Path, statements: list[exp.Expression]) -> None:
    """Build one database under a temporary name in the same folder, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            for stmt in statements:
                if isinstance(stmt, exp.Create):
                    conn.execute(_rewrite_create(stmt))
                else:
                    _insert(conn, stmt)  # type: ignore[arg-type]
            conn.execute("COMMIT")
        finally:
            conn.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared like any data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fingerprint(dump: Path) -> str:
    return hashlib.sha256(dump.read_bytes()).hexdigest()[:16] + f"-v{CONVERTER_VERSION}"


def ensure_databases(data_dir: Path, dump: Path | None = None) -> dict[str, Path]:
    """Convert the dump into `data_dir` unless a complete conversion of the same dump is there.

    Returns db name -> SQLite file, in dump order.
    """
    with _LOCK:
        return _ensure(data_dir, dump or dump_path())


def _ensure(data_dir: Path, dump: Path) -> dict[str, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = _fingerprint(dump)
    manifest = data_dir / MANIFEST
    if manifest.is_file():
        try:
            meta = json.loads(manifest.read_text())
        except ValueError:
            meta = {}
        files = {db: data_dir / f"{db}.sqlite" for db in meta.get("dbs", [])}
        if meta.get("stamp") == stamp and files and all(p.is_file() for p in files.values()):
            return files
    by_db = parse_dump(dump.read_text(encoding="utf-8"))
    if not by_db:
        raise EnvError(f"spider dump {dump} holds no databases")
    files = {}
    for db, statements in by_db.items():
        files[db] = data_dir / f"{db}.sqlite"
        try:
            _write_db(files[db], statements)
        except sqlite3.Error as e:
            raise EnvError(f"converting spider database {db} to SQLite failed: {e}") from None
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=data_dir)
    with os.fdopen(fd, "w") as f:
        json.dump({"stamp": stamp, "dbs": list(files)}, f)
    os.replace(tmp, manifest)
    return files
