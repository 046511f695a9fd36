"""The server backend: Spider databases on a MariaDB/MySQL server named by an SQLAlchemy URL.

Each episode gets a private database `lbi_ep_<random>` holding copies of the source tables
(`CREATE TABLE ... LIKE` + `INSERT ... SELECT`), dropped at close; the gold query runs on the
untouched source database. scripts/mariadb.sh grants the `lbi` user read access everywhere and
write access only to `lbi_ep_%`, so even a fully qualified write to a source table is refused
by the server. A statement deadline is set per session (MariaDB `max_statement_time`, MySQL
`max_execution_time`).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from lbi.envs.base import EnvError
from lbi.envs.sql.common import ColumnInfo, Result, SqlError, TableInfo, digest_tables, fetch

_DIALECTS = {"mysql", "mariadb"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _message(e: Exception) -> str:
    orig = getattr(e, "orig", e)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(orig).splitlines()[0] if str(orig) else type(orig).__name__


class _Session:
    """One DB-API connection in autocommit mode with a statement deadline."""

    def __init__(self, backend: ServerBackend, database: str | None) -> None:
        self.backend = backend
        self.proxy = backend.connect()
        self.raw: Any = self.proxy.driver_connection
        self.raw.autocommit(True)
        if backend.timeout_sql:
            self.run(backend.timeout_sql)
        if database:
            self.run(f"USE {_quote(database)}")

    def run(self, sql: str, cap: int | None = None) -> Result:
        cur = self.raw.cursor()
        try:
            cur.execute(sql)
            return fetch(cur, self.backend.fetch_cap if cap is None else cap)
        except Exception as e:  # the driver's errors have no common base worth naming here
            text = _message(e)
            if "max_statement_time" in text or "maximum statement execution time" in text:
                text = f"statement stopped: it ran longer than the {self.backend.timeout_s:g} s limit ({text})"
            raise SqlError(text) from None
        finally:
            cur.close()

    def tables(self, database: str) -> list[str]:
        res = self.run(f"SHOW FULL TABLES FROM {_quote(database)} WHERE Table_type = 'BASE TABLE'")
        return sorted(str(r[0]) for r in res.rows)

    def close(self) -> None:
        self.proxy.close()


class ServerEpisode:
    def __init__(self, backend: ServerBackend, db: str) -> None:
        self.scratch = f"lbi_ep_{uuid.uuid4().hex[:12]}"
        self.session = _Session(backend, None)
        try:
            self._copy(db)
        except SqlError as e:
            self.close()
            raise EnvError(f"could not copy database {db} into {self.scratch}: {e}") from None

    def _copy(self, db: str) -> None:
        s = self.session
        s.run(f"CREATE DATABASE {_quote(self.scratch)}")
        (mode,) = s.run("SELECT @@SESSION.sql_mode").rows[0]
        # Copy ids of 0 as 0 rather than as the next AUTO_INCREMENT value, as the dump itself does.
        s.run("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
        for t in s.tables(db):
            dst, src = f"{_quote(self.scratch)}.{_quote(t)}", f"{_quote(db)}.{_quote(t)}"
            s.run(f"CREATE TABLE {dst} LIKE {src}")
            s.run(f"INSERT INTO {dst} SELECT * FROM {src}")
        s.run(f"SET SESSION sql_mode = '{mode}'")
        s.run(f"USE {_quote(self.scratch)}")

    def execute(self, sql: str) -> Result:
        return self.session.run(sql)

    def digest(self) -> str:
        tables: dict[str, tuple[list[str], list[Any]]] = {}
        for t in self.session.tables(self.scratch):
            res = self.session.run(f"SELECT * FROM {_quote(self.scratch)}.{_quote(t)}", cap=10**9)
            tables[t] = (res.columns, res.rows)
        return digest_tables(tables)

    def close(self) -> None:
        with contextlib.suppress(SqlError):  # if not, scripts/mariadb.sh start drops leftovers
            self.session.run(f"DROP DATABASE IF EXISTS {_quote(self.scratch)}")
        self.session.close()


class ServerBackend:
    def __init__(self, url: str, timeout_s: float, fetch_cap: int) -> None:
        try:
            parsed = make_url(url.replace("{db}", ""))
        except ArgumentError:
            raise EnvError(f"env_options.sql.url is not an SQLAlchemy URL: {url!r}") from None
        if parsed.get_backend_name() not in _DIALECTS:
            raise EnvError(
                f"env_options.sql.url must be a MariaDB/MySQL URL, got {parsed.get_backend_name()!r}"
            )
        self.safe_url = parsed.render_as_string(hide_password=True)
        connect_args: dict[str, Any] = {}
        if (
            parsed.drivername == "mysql+pymysql"
            and parsed.host in _LOOPBACK
            and "ssl" not in str(parsed.query)
        ):
            # PyMySQL tries TLS by default and builds a fresh SSL context per connection (~80 ms);
            # over loopback TLS protects nothing, and each episode opens a connection.
            connect_args["ssl_disabled"] = True
        try:
            self.engine = create_engine(
                parsed.set(database=None), poolclass=NullPool, connect_args=connect_args
            )
        except (NoSuchModuleError, ImportError) as e:
            raise EnvError(f"{self.safe_url} needs a missing driver ({e})") from None
        self.timeout_s = timeout_s
        self.fetch_cap = fetch_cap
        self.dialect = "mysql"
        self.max_concurrency = 4
        self.timeout_sql = ""
        probe = _Session(self, None)  # the first connection tells MariaDB from MySQL
        try:
            version = str(probe.run("SELECT VERSION()").rows[0][0])
        finally:
            probe.close()
        self.mariadb = "mariadb" in version.lower()
        self.label = f"{'MariaDB' if self.mariadb else 'MySQL'} {version.split('-')[0]}"
        self.timeout_sql = (
            f"SET SESSION max_statement_time = {timeout_s:g}"
            if self.mariadb
            else f"SET SESSION max_execution_time = {int(timeout_s * 1000)}"
        )

    def connect(self) -> Any:
        try:
            return self.engine.raw_connection()
        except Exception as e:  # raw_connection() passes the driver's own errors through unwrapped
            raise EnvError(
                f"cannot connect to {self.safe_url}: {_message(e)} (scripts/mariadb.sh start?)"
            ) from None

    def run_gold(self, db: str, sql: str) -> Result:
        s = _Session(self, db)
        try:
            return s.run(sql, cap=10**9)
        finally:
            s.close()

    def open_episode(self, db: str) -> ServerEpisode:
        return ServerEpisode(self, db)

    def describe(self, db: str) -> list[TableInfo]:
        s = _Session(self, None)
        try:
            return [self._table(s, db, t) for t in s.tables(db)]
        finally:
            s.close()

    @staticmethod
    def _table(s: _Session, db: str, name: str) -> TableInfo:
        where = f"TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{name}'"
        cols = s.run(
            f"SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM information_schema.COLUMNS WHERE {where} ORDER BY ORDINAL_POSITION"
        ).rows
        fks = s.run(
            "SELECT COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE {where} AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION"
        ).rows
        q = f"{_quote(db)}.{_quote(name)}"
        return TableInfo(
            name,
            [ColumnInfo(str(c), str(t), k == "PRI") for c, t, k in cols],
            [(str(a), str(b), str(c)) for a, b, c in fks],
            s.run(f"SELECT * FROM {q} LIMIT 3").rows,
            int(s.run(f"SELECT count(*) FROM {q}").rows[0][0]),
        )

    def close(self) -> None:
        self.engine.dispose()
