"""The server backend: Spider databases on a MariaDB/MySQL server named by an SQLAlchemy URL.

Each episode gets a private database `lbi_ep_<random>` holding copies of the source tables
(`CREATE TABLE ... LIKE` + `INSERT ... SELECT`), dropped at close; the gold query runs on the
untouched source database. The URL's account (`lbi`, set up by scripts/mariadb.sh) makes the
copy and then a user of the same name, granted table rights on that one database only: the
agent's statements run as that user, so the server refuses `mysql.*`, the source databases and
every other episode's copy. A statement deadline is set per session (MariaDB
`max_statement_time`, MySQL `max_execution_time`); since any user may change its own session
variables, a watchdog also ends the agent's statement with `KILL QUERY` (which a user may send
to its own connections) shortly after the deadline.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
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
_GRACE_S = 0.5  # the server's own deadline comes first; the watchdog is for when it was lifted
# What the agent may do in its copy: no routines, events, file or account rights.
_EPISODE_RIGHTS = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, "
    "SHOW VIEW, TRIGGER, LOCK TABLES, CREATE TEMPORARY TABLES"
)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _message(e: Exception) -> str:
    orig = getattr(e, "orig", e)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(orig).splitlines()[0] if str(orig) else type(orig).__name__


class _Session:
    """One DB-API connection in autocommit mode with a statement deadline.

    With a `login` (an episode's user) each statement is also watched: past the deadline plus
    a grace period a second connection of that user sends `KILL QUERY`.
    """

    def __init__(
        self, backend: ServerBackend, database: str | None, login: tuple[str, str] | None = None
    ) -> None:
        self.backend = backend
        self.login = login
        self.proxy = backend.connect(login)
        self.raw: Any = self.proxy.driver_connection
        self.raw.autocommit(True)
        self._lock = threading.Lock()
        self._running = 0  # the watched statement's number while it runs, else 0
        self._killed = 0
        self._count = 0
        if backend.timeout_sql:
            self.run(backend.timeout_sql)
        self.thread_id = int(self.run("SELECT CONNECTION_ID()").rows[0][0])
        if database:
            self.run(f"USE {_quote(database)}")

    def run(self, sql: str, cap: int | None = None) -> Result:
        cur = self.raw.cursor()
        timer = self._watch()
        try:
            cur.execute(sql)
            return fetch(cur, self.backend.fetch_cap if cap is None else cap)
        except Exception as e:  # the driver's errors have no common base worth naming here
            text = _message(e)
            killed = self._killed and self._killed == self._count
            if killed or "max_statement_time" in text or "maximum statement execution time" in text:
                text = f"statement stopped: it ran longer than the {self.backend.timeout_s:g} s limit ({text})"
            raise SqlError(text) from None
        finally:
            if timer:
                timer.cancel()
                with self._lock:  # a kill in flight finishes first, and none starts after this
                    self._running = 0
            cur.close()

    def _watch(self) -> threading.Timer | None:
        if self.login is None:
            return None
        self._count += 1
        self._running = self._count
        timer = threading.Timer(self.backend.timeout_s + _GRACE_S, self._kill, (self._count,))
        timer.daemon = True
        timer.start()
        return timer

    def _kill(self, statement: int) -> None:
        with self._lock:
            if self._running != statement:
                return
            self._killed = statement
            with contextlib.suppress(Exception):  # nothing to report to: the step reports the stop
                killer = self.backend.connect(self.login)
                try:
                    killer.driver_connection.cursor().execute(f"KILL QUERY {self.thread_id}")
                finally:
                    killer.close()

    def tables(self, database: str) -> list[str]:
        res = self.run(f"SHOW FULL TABLES FROM {_quote(database)} WHERE Table_type = 'BASE TABLE'")
        return sorted(str(r[0]) for r in res.rows)

    def close(self) -> None:
        self.proxy.close()


class ServerEpisode:
    """A private copy, made and dropped by the backend's account, used by its own user."""

    def __init__(self, backend: ServerBackend, db: str) -> None:
        self.scratch = f"lbi_ep_{uuid.uuid4().hex[:12]}"
        self.session = _Session(backend, None)  # lbi's own: copy, digest, clean-up
        self.agent: _Session | None = None
        self.account = ""
        try:
            self._copy(db)
        except SqlError as e:
            self.close()
            raise EnvError(f"could not copy database {db} into {self.scratch}: {e}") from None
        try:
            self.agent = self._user(backend)
        except (SqlError, EnvError) as e:
            self.close()
            raise EnvError(
                f"could not create the episode's user {self.scratch}: {e} (the URL's account "
                "needs CREATE USER and ALL ON `lbi\\_ep\\_%`.* WITH GRANT OPTION; "
                "scripts/mariadb.sh start sets that up)"
            ) from None

    def _user(self, backend: ServerBackend) -> _Session:
        """Create this episode's user, allowed into the copy only, and log in as it."""
        s, password = self.session, secrets.token_hex(16)
        # The host lbi connects from, as the server sees it: the user may log in from there only.
        (host,) = s.run("SELECT SUBSTRING_INDEX(USER(), '@', -1)").rows[0]
        self.account = f"'{self.scratch}'@'{host}'"
        limit = f" WITH MAX_STATEMENT_TIME {backend.timeout_s:g}" if backend.mariadb else ""
        s.run(f"CREATE USER {self.account} IDENTIFIED BY '{password}'{limit}")
        # `_` is a wildcard in a grant's database name: escaped, the grant names this copy only
        # (and lbi's own grant, on `lbi\_ep\_%`, covers only escaped names).
        exact = _quote(self.scratch.replace("_", "\\_"))
        s.run(f"GRANT {_EPISODE_RIGHTS} ON {exact}.* TO {self.account}")
        return _Session(backend, self.scratch, login=(self.scratch, password))

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
        assert self.agent is not None
        return self.agent.run(sql)

    def digest(self) -> str:
        tables: dict[str, tuple[list[str], list[Any]]] = {}
        for t in self.session.tables(self.scratch):
            res = self.session.run(f"SELECT * FROM {_quote(self.scratch)}.{_quote(t)}", cap=10**9)
            tables[t] = (res.columns, res.rows)
        return digest_tables(tables)

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
        with contextlib.suppress(SqlError):  # if not, scripts/mariadb.sh start drops leftovers
            if self.account:
                self.session.run(f"DROP USER IF EXISTS {self.account}")
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
        self.url = parsed.set(database=None)
        connect_args: dict[str, Any] = {}
        if (
            parsed.drivername == "mysql+pymysql"
            and parsed.host in _LOOPBACK
            and "ssl" not in str(parsed.query)
        ):
            # PyMySQL tries TLS by default and builds a fresh SSL context per connection (~80 ms);
            # over loopback TLS protects nothing, and each episode opens a connection.
            connect_args["ssl_disabled"] = True
        self.connect_args = connect_args
        try:
            self.engine = create_engine(self.url, poolclass=NullPool, connect_args=connect_args)
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

    def connect(self, login: tuple[str, str] | None = None) -> Any:
        """A raw connection as the URL's account, or as `login` (user, password)."""
        engine = self.engine
        if login is not None:
            url = self.url.set(username=login[0], password=login[1])
            engine = create_engine(url, poolclass=NullPool, connect_args=self.connect_args)
        try:
            return engine.raw_connection()
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
