"""Confinement of agent SQL (issue 31, findings 2, 3 and 11), driven through `reset`/`step`.

- SQLite `sql` env: `fts3_tokenizer` (leak, then a forged pointer that segfaulted the process),
  virtual tables, PRAGMA writes, temp objects, and unbounded growth (`zeroblob`, doubling).
- MCP SQLite server: `VACUUM INTO`/ATTACH writing files, the fts3 leak, a runaway recursive CTE,
  oversized values.
- MariaDB `sql` env: a statement deadline the agent cannot lift, no `mysql.*`, no other
  episode's copy, no `admin`/`admin` account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require
from lbi.config import Config
from lbi.envs.base import EnvError, make_env
from lbi.envs.mcp.env import McpEnv
from lbi.envs.mcp.library_suite import suite_tasks
from lbi.envs.sql.env import SqlEnv
from lbi.envs.tools.actions import format_tool_action
from lbi.types import Task

PETS = Task(env="sql", instruction="x", setup={"db": "pets_1"})
FORGE = "SELECT fts3_tokenizer('simple', x'4141414141414141')"
CRASH = "CREATE VIRTUAL TABLE v USING fts3(body, tokenize=simple)"


def _refused(obs: str, info: dict[str, object], terminated: bool) -> bool:
    return obs.startswith("Error:") and bool(info["error"]) and not terminated


# -- SQLite `sql` env (findings 2 and 11) ------------------------------------------------------


@pytest.fixture(scope="module")
def sql_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    data = tmp_path_factory.mktemp("spider")
    return Config(
        run_root=str(data.parent), env_options={"sql": {"data_dir": str(data), "timeout_s": 1.0}}
    )


@pytest.fixture
def sql(sql_config: Config) -> Iterator[SqlEnv]:
    env = make_env("sql:pets_1", sql_config)
    assert isinstance(env, SqlEnv)
    env.reset(PETS)
    yield env
    env.close()


def test_fts3_tokenizer_pointer_leak_is_refused(sql: SqlEnv) -> None:
    obs, _, terminated, _, info = sql.step("SELECT hex(fts3_tokenizer('simple'))")
    assert _refused(obs, info, terminated) and "fts3_tokenizer" in obs, obs


@pytest.mark.parametrize(
    "action",
    [
        FORGE,
        CRASH,
        "CREATE VIRTUAL TABLE f5 USING fts5(body)",
        "CREATE VIRTUAL TABLE r USING rtree(id, a, b)",
        "CREATE TABLE c (x CHECK (fts3_tokenizer('simple', x'4141414141414141') IS NOT NULL))",
        "CREATE TABLE g (x, y AS (hex(fts3_tokenizer('simple'))))",
        "SELECT * FROM Student WHERE fts3_tokenizer('simple') IS NOT NULL",
        "VACUUM",
        "CREATE TEMP TABLE scratch (x)",
        "PRAGMA writable_schema = ON",
        "PRAGMA max_page_count = 1000000000",
        "PRAGMA trusted_schema = ON",
        "PRAGMA temp_store = MEMORY",
    ],
)
def test_dangerous_sqlite_statements_are_error_observations(sql: SqlEnv, action: str) -> None:
    obs, reward, terminated, _, info = sql.step(action)
    assert _refused(obs, info, terminated) and reward == 0.0, obs
    assert not sql.step("SELECT count(*) FROM Student")[4]["error"]  # the episode goes on


@pytest.mark.parametrize(
    ("plant", "use"),
    [
        ("CREATE VIEW leak AS SELECT hex(fts3_tokenizer('simple')) AS p", "SELECT * FROM leak"),
        (
            "CREATE TRIGGER t AFTER UPDATE ON Student BEGIN SELECT fts3_tokenizer('simple'); END",
            "UPDATE Student SET Age = Age + 1",
        ),
    ],
)
def test_fts3_tokenizer_hidden_in_a_view_or_trigger_is_refused(
    sql: SqlEnv, plant: str, use: str
) -> None:
    sql.step(plant)  # SQLite resolves the function only when the view or trigger runs
    obs, _, terminated, _, info = sql.step(use)
    assert _refused(obs, info, terminated) and "fts3_tokenizer" in obs, obs


def test_a_forged_tokenizer_cannot_crash_the_lbi_process(sql_config: Config) -> None:
    # Run in a child: before the fix this segfaulted (exit 139), which would kill pytest itself.
    data_dir = sql_config.env_options["sql"]["data_dir"]
    code = textwrap.dedent(f"""
        from lbi.config import Config
        from lbi.envs.base import make_env
        from lbi.types import Task
        env = make_env("sql:pets_1", Config(env_options={{"sql": {{"data_dir": {data_dir!r}}}}}))
        env.reset(Task(env="sql", instruction="x", setup={{"db": "pets_1"}}))
        for action in ({FORGE!r}, {CRASH!r}, "INSERT INTO v VALUES ('a b c')", "SELECT 1"):
            print(env.step(action)[0].splitlines()[0], flush=True)
        print("survived")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("survived"), (
        proc.returncode,
        proc.stdout,
        proc.stderr[-2000:],
    )


def test_values_and_growth_are_capped(sql: SqlEnv) -> None:
    obs, _, terminated, _, info = sql.step("SELECT length(zeroblob(999999999))")
    assert _refused(obs, info, terminated) and "too big" in obs, obs
    obs, _, terminated, _, info = sql.step("CREATE TABLE big AS SELECT zeroblob(999999999) AS b")
    assert _refused(obs, info, terminated), obs
    assert not sql.step("CREATE TABLE grow (b)")[4]["error"]
    sixteen = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 16)"
    errors = []
    for _ in range(8):  # 14.4 MB a step: 115 MB without a cap
        obs, _, _, _, info = sql.step(
            f"INSERT INTO grow {sixteen} SELECT randomblob(900000) FROM c"
        )
        if info["error"]:
            errors.append(obs)
    assert errors and "full" in errors[0], errors
    pages = int(sql.step("PRAGMA page_count")[0].split("\n")[1])
    assert pages * 4096 < 80 << 20  # the copy (< 1 MB) plus 64 MB of growth


def test_allowed_sql_still_works(sql: SqlEnv) -> None:
    for action in (
        "PRAGMA table_info(Student)",
        "SELECT name FROM pragma_table_info('Student')",
        "SELECT json_extract('{\"a\": 1}', '$.a'), abs(-1), round(2.5), date('2024-01-02')",
        "SELECT Fname, rank() OVER (ORDER BY Age) FROM Student",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT sum(x) FROM c",
        "CREATE VIEW adults AS SELECT * FROM Student WHERE Age >= 18",
        "CREATE INDEX by_age ON Student(Age)",
        "CREATE TRIGGER keep AFTER DELETE ON Student BEGIN SELECT upper(old.Fname); END",
        "DELETE FROM Student WHERE StuID = 1001",
        "ALTER TABLE Student ADD COLUMN note TEXT",
    ):
        obs, _, _, _, info = sql.step(action)
        assert not info["error"], (action, obs)


# -- MCP SQLite server (finding 3) -------------------------------------------------------------


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpEnv]:
    env = make_env("mcp", Config(env_options={"mcp": {"timeout_s": 20}}))
    assert isinstance(env, McpEnv)
    env.reset(suite_tasks()[0], seed=0)
    yield env
    env.close()


def _query(env: McpEnv, sql: str) -> tuple[str, bool]:
    obs, _, terminated, _, info = env.step(format_tool_action("query", {"sql": sql}))
    assert not terminated
    return obs, bool(info["error"])


def test_mcp_query_cannot_write_files(mcp: McpEnv, tmp_path: Path) -> None:
    for sql in (
        f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        f"ATTACH DATABASE '{tmp_path / 'new.db'}' AS x",
        "VACUUM INTO 'relative.db'",
    ):
        obs, error = _query(mcp, sql)
        assert error and obs.startswith("Error:"), (sql, obs)
    assert not list(tmp_path.iterdir())
    assert not Path("relative.db").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT hex(fts3_tokenizer('simple'))",
        FORGE,
        "CREATE VIRTUAL TABLE temp.v USING fts3(body, tokenize=simple)",
        "CREATE TEMP TABLE t AS SELECT 1",
        "PRAGMA journal_mode = OFF",
        "SELECT load_extension('/nonexistent')",
    ],
)
def test_mcp_query_refuses_dangerous_sql(mcp: McpEnv, sql: str) -> None:
    obs, error = _query(mcp, sql)
    assert error and obs.startswith("Error:") and "not authorized" in obs, (sql, obs)
    obs, error = _query(mcp, "SELECT count(*) AS n FROM books")
    assert not error and json.loads(obs) == [{"n": 4}]


def test_mcp_runaway_query_is_stopped_by_the_server(mcp: McpEnv) -> None:
    start = time.monotonic()
    obs, error = _query(
        mcp,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    )
    took = time.monotonic() - start
    assert error and "limit" in obs and took < 10, (took, obs)
    start = time.monotonic()
    obs, error = _query(mcp, "SELECT count(*) AS n FROM books")  # the server is free again
    assert not error and time.monotonic() - start < 2


def test_mcp_values_and_database_size_are_capped(mcp: McpEnv) -> None:
    big = {"table": "members", "values": {"name": "x" * 2_000_000, "email": "big@example.org"}}
    obs, _, _, _, info = mcp.step(format_tool_action("insert_row", big))
    assert info["error"] and "too big" in obs, obs[:300]
    obs, error = _query(mcp, "SELECT length(zeroblob(999999999)) AS n")
    assert error and "too big" in obs, obs
    obs, error = _query(mcp, "PRAGMA max_page_count")
    assert not error and json.loads(obs)[0]["max_page_count"] * 4096 < 80 << 20, obs


# -- MariaDB `sql` env (finding 11) ------------------------------------------------------------

PORT = os.environ.get("LBI_MARIADB_PORT", "3307")
URL = os.environ.get("LBI_MARIADB_URL", f"mysql+pymysql://lbi:lbi@127.0.0.1:{PORT}/{{db}}")


@pytest.fixture(scope="module")
def maria_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    from lbi.envs.sql.server_backend import ServerBackend

    try:
        ServerBackend(URL, 5.0, 10).close()
        reachable, why = True, ""
    except EnvError as e:
        reachable, why = False, str(e)
    require(reachable, f"MariaDB for the sql env ({why})")
    data = tmp_path_factory.mktemp("spider-maria")
    return Config(env_options={"sql": {"data_dir": str(data), "url": URL, "timeout_s": 0.5}})


@pytest.fixture
def maria(maria_config: Config) -> Iterator[SqlEnv]:
    env = make_env("sql:pets_1", maria_config)
    assert isinstance(env, SqlEnv)
    env.reset(PETS)
    yield env
    env.close()


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "lift",
    [
        "SET SESSION max_statement_time = 0",
        "SET @@session.max_statement_time = 0",
        "SET max_statement_time = 1000",
    ],
)
def test_mariadb_deadline_cannot_be_lifted(maria: SqlEnv, lift: str) -> None:
    maria.step(lift)  # whether refused or accepted, the next statement is still stopped
    start = time.monotonic()
    obs, _, terminated, _, info = maria.step("SELECT SLEEP(5)")
    took = time.monotonic() - start
    assert info["error"] and "limit" in obs and not terminated and took < 3.0, (took, obs)
    assert not maria.step("SELECT 1")[4]["error"]


@pytest.mark.mariadb
def test_mariadb_per_statement_override_is_stopped(maria: SqlEnv) -> None:
    start = time.monotonic()
    obs, _, _, _, info = maria.step("SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(5)")
    assert info["error"] and "limit" in obs and time.monotonic() - start < 3.0, obs


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT User, Password FROM mysql.user",
        "SELECT * FROM mysql.global_priv",
        "SELECT count(*) FROM pets_1.Student",
        "DELETE FROM pets_1.Student",
    ],
)
def test_mariadb_system_tables_and_sources_are_out_of_reach(maria: SqlEnv, sql: str) -> None:
    obs, _, terminated, _, info = maria.step(sql)
    assert _refused(obs, info, terminated) and "denied" in obs, obs


@pytest.mark.mariadb
def test_mariadb_episodes_cannot_touch_each_other(maria: SqlEnv, maria_config: Config) -> None:
    other = make_env("sql:pets_1", maria_config)
    assert isinstance(other, SqlEnv)
    try:
        other.reset(PETS)
        theirs = other._episode.scratch  # type: ignore[union-attr]
        listed, *_ = maria.step("SHOW DATABASES LIKE 'lbi\\_ep\\_%'")
        assert theirs not in listed, listed
        for sql in (
            f"SELECT count(*) FROM {theirs}.Student",
            f"DELETE FROM {theirs}.Student",
            f"DROP DATABASE {theirs}",
            f"CREATE TABLE {theirs}.planted (x INT)",
        ):
            obs, _, terminated, _, info = maria.step(sql)
            assert _refused(obs, info, terminated) and "denied" in obs, (sql, obs)
        assert "34" in other.step("SELECT count(*) FROM Student")[0]
    finally:
        other.close()


@pytest.mark.mariadb
def test_mariadb_has_no_admin_admin_account(maria_config: Config) -> None:
    import pymysql

    socket = Path(os.environ.get("TMPDIR", "/tmp")) / f"lbi-mariadb-{PORT}.sock"
    where = [{"host": "127.0.0.1", "port": int(PORT)}]  # admin@'%' (from the Spider dump)
    if socket.exists():
        where.append({"unix_socket": str(socket)})  # admin@localhost (from scripts/mariadb.sh)
    for place in where:
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            pymysql.connect(user="admin", password="admin", **place).close()  # type: ignore[arg-type]
