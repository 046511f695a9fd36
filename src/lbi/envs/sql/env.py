"""The `sql` environment: answer questions over the 20 Spider-dev databases, one statement a step.

`--env sql` spans all databases (each task names its own in `setup["db"]`); `sql:NAME` narrows
to one. Options live in `env_options.sql`: `data_dir` (the SQLite cache, default
`<run_root>/.data/spider`), `url` (a MariaDB/MySQL SQLAlchemy URL such as
`mysql+pymysql://lbi:lbi@127.0.0.1:3307/{db}`; without it the SQLite files are used),
`max_rows`, `max_chars`, `timeout_s`.

The reset observation shows the database and its schema but not the task's instruction: the
agent gets the instruction separately, and keeping it out of o_0 means backward construction can
relabel a sub-trajectory without the original instruction showing through.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.data import Shipped
from lbi.envs.sql import docs as sqldocs
from lbi.envs.sql.common import Backend, Episode, Result, SqlError, TableInfo, render
from lbi.envs.sql.scoring import is_ordered, results_match
from lbi.envs.sql.spider import benchmark_tasks, ensure_databases
from lbi.envs.sql.sqlite_backend import SqliteBackend
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

SUITE = "spider-dev-23"
_OPTIONS = {"data_dir", "url", "max_rows", "max_chars", "timeout_s"}
_SUBMIT = re.compile(r"submit\b\s*(.*)", re.IGNORECASE | re.DOTALL)
# The floor policy's answer: a query with no rows, valid in every dialect lbi runs. A bare
# `submit` before any query returned a table is refused instead of handing in nothing: models
# that write their query in REASON and answer `submit` (Qwen2.5-Coder-1.5B on spider, measured)
# then learn from the error what a lost episode would not tell them.
_EMPTY_ANSWER = "submit SELECT 1 FROM (SELECT 1 AS one) AS empty_answer WHERE 1 = 0"
# A statement that runs on every database of a dialect: the action examples' first.
_LIST_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "mysql": "SHOW TABLES",
}
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_VERBS = ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER"]
_EXTRA_VERBS = {"sqlite": ["PRAGMA"], "mysql": ["SHOW", "DESCRIBE"]}
# Pristine databases do not change, so their descriptions and gold results are computed once.
_DESCRIBED: dict[tuple[str, str], list[TableInfo]] = {}
_GOLD: dict[tuple[str, str, str], Result] = {}


def _grammar(dialect: str) -> str:
    verbs = _VERBS + _EXTRA_VERBS.get(dialect, [])
    words = " | ".join(f'"{w}" | "{w.lower()}"' for w in verbs)
    return f'( "submit" ( " " [^\\n]+ )? | ( {words} ) " " [^\\n]+ )'


class SqlEnv:
    """One episode at a time on a private copy of one Spider database."""

    name = "sql"

    def __init__(
        self, backend: Backend, key: str, databases: list[str], max_rows: int, max_chars: int
    ) -> None:
        self.backend = backend
        self.key = key  # identifies the backend's data in the module caches
        self.databases = databases
        self.max_rows = max_rows
        self.max_chars = max_chars
        self.max_concurrency = backend.max_concurrency
        self._episode: Episode | None = None
        self._task: Task | None = None
        self._db = ""
        self._last: Result | None = None
        self._done = False
        self._doc_db: dict[str, str] = {}

    # -- documentation -------------------------------------------------------------------------
    def describe(self, db: str) -> list[TableInfo]:
        if (self.key, db) not in _DESCRIBED:
            _DESCRIBED[(self.key, db)] = self.backend.describe(db)
        return _DESCRIBED[(self.key, db)]

    def docs(self) -> list[Doc]:
        out = [
            sqldocs.guide_doc(
                self.name, self.backend.label, self.action_space().description, self.databases
            )
        ]
        for db in self.databases:
            for doc in sqldocs.database_docs(self.name, db, self.describe(db)):
                self._doc_db[doc.id] = db
                out.append(doc)
        return out

    def action_space(self) -> ActionSpace:
        description = (
            f"Each action is ONE {self.backend.label} statement on a single line, or `submit`.\n"
            "- A statement runs on your private copy of the database; you see its result table "
            f"(at most {self.max_rows} rows, then the total row count) or its error. Only the "
            "statement after ACTION: runs: one written in REASON is not run.\n"
            "- `submit` ends the episode and hands in the result of your most recent statement that "
            "returned a table; before any has, it is refused: run your query first.\n"
            "- `submit` followed by a statement on the same line (e.g. `submit SELECT count(*) "
            "FROM singer`) runs that statement and hands in its result instead.\n"
            "An answer is right when its rows equal those of the correct query: the same columns in "
            "the asked order and nothing extra; row order counts only when the question asks for one."
        )
        examples = [
            _LIST_TABLES.get(self.backend.dialect, "SELECT count(*) FROM singer"),
            "SELECT count(*) FROM singer",
            "SELECT Name FROM singer WHERE Age > 30 ORDER BY Name",
            "submit",
        ]
        return ActionSpace(
            description=description,
            grammar=_grammar(self.backend.dialect),
            examples=examples,
            finish=_EMPTY_ANSWER,
            language="sql",
        )

    # -- episodes ------------------------------------------------------------------------------
    def _db_for(self, task: Task) -> str:
        named = str(task.setup.get("db") or "")
        if not named and task.doc_id:
            if not self._doc_db:
                self.docs()
            named = self._doc_db.get(task.doc_id, "")
        if not named and len(self.databases) == 1:
            named = self.databases[0]
        match = [d for d in self.databases if d.lower() == named.lower()]
        if not match:
            where = f"names database {named!r}" if named else "names no database (setup['db'])"
            raise EnvError(
                f"task {task.name or task.id} {where}; this env has: {', '.join(self.databases)}"
            )
        return match[0]

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        """Start on a fresh copy of the task's database; `seed` changes nothing (it is deterministic)."""
        db = self._db_for(task)
        self._close_episode()
        self._episode = self.backend.open_episode(db)
        self._task, self._db, self._last, self._done = task, db, None, False
        obs = (
            f"Database: {db} ({self.backend.label})\nTables (* = primary key, -> = foreign key):\n"
            f"{sqldocs.schema_summary(self.describe(db))}\n"
            "Run one SQL statement per action; `submit` hands in your last result."
        )
        return obs, {"db": db, "engine": self.backend.label}

    def step(self, action: str) -> StepResult:
        if self._episode is None or self._done:
            return self._error(
                "the episode has ended; call reset" if self._done else "call reset first",
                self._done,
            )
        text = _FENCE.sub("", (action or "").strip()).strip().rstrip(";").strip()
        if not text:
            return self._error("empty action: send one SQL statement, or `submit`")
        m = _SUBMIT.fullmatch(text)
        if m:
            return self._submit(m.group(1).strip())
        try:
            result = self._episode.execute(text)
        except SqlError as e:
            return self._error(str(e))
        if result.is_query:
            self._last = result
        obs = render(result, self.max_rows, self.max_chars)
        extra = {"rows": result.total} if result.is_query else {"affected": result.rowcount}
        return obs, 0.0, False, False, {"error": False, **extra}

    def _submit(self, sql: str) -> StepResult:
        assert self._episode is not None
        if not sql:
            if self._last is None:
                return self._error(
                    "no statement has returned a table yet, so there is nothing to submit: run "
                    "your query as the ACTION first, or write `submit <query>`"
                )
            result = self._last
        else:
            try:
                result = self._episode.execute(sql)
            except SqlError as e:
                return self._error(f"{e} (nothing was submitted)")
            if not result.is_query:
                return self._error(
                    "`submit <query>` needs a query that returns rows (nothing was submitted)"
                )
        self._done = True
        reward, info = self._score(result)
        # The answer as text, for checks that compare answers (a suite file's `sql_answer`).
        cells = ", ".join("" if v is None else str(v) for row in result.rows for v in row)
        info.update(error=False, submitted_rows=result.total, answer=cells[:20000])
        return (
            f"Submitted {result.total} row{'s' if result.total != 1 else ''}.",
            reward,
            True,
            False,
            info,
        )

    def _score(self, result: Result) -> tuple[float, dict[str, Any]]:
        gold_sql = str((self._task.gold if self._task else {}).get("sql") or "")
        if not gold_sql:
            return 0.0, {"correct": None}
        key = (self.key, self._db, gold_sql)
        if key not in _GOLD:
            try:
                _GOLD[key] = self.backend.run_gold(self._db, gold_sql)
            except SqlError as e:
                return 0.0, {"correct": None, "gold_error": str(e)}
        ordered = is_ordered(gold_sql, self.backend.dialect)
        ok = result.complete and results_match(result.rows, _GOLD[key].rows, ordered)
        return float(ok), {"correct": ok, "ordered": ordered}

    @property
    def db(self) -> str | None:
        """The database file of a one-database SQLite env (what a suite file's SQL checks run
        on when they name none); None otherwise."""
        files = getattr(self.backend, "files", None)
        if isinstance(files, dict) and len(self.databases) == 1:
            return str(files[self.databases[0]])
        return None

    def _error(self, message: str, terminated: bool = False) -> StepResult:
        return f"Error: {message}", 0.0, terminated, False, {"error": True}

    def state_digest(self) -> str:
        if self._episode is None:
            raise EnvError("state_digest() needs an episode: call reset first")
        return self._episode.digest()

    def interrupt(self) -> None:
        """Called from another thread while a step runs, when the episode is being abandoned
        (Ctrl-C): SQLite stops the statement at once; a server statement is bounded by its
        own watchdog (`timeout_s`)."""
        episode = self._episode
        stop = getattr(episode, "interrupt", None)
        if stop is not None:
            stop()

    def _close_episode(self) -> None:
        if self._episode is not None:
            self._episode.close()
            self._episode = None

    def close(self) -> None:
        self._close_episode()
        self.backend.close()

    # -- suites --------------------------------------------------------------------------------
    def suites(self) -> list[str]:
        return [SUITE]

    def load_suite(self, name: str) -> list[Task]:
        if name != SUITE:
            raise EnvError(f"unknown suite {name!r} for env sql; known: {SUITE}")
        return benchmark_tasks(self.name, self.databases)

    def sample_tasks(self) -> list[Task]:
        """Up to three benchmark tasks on different databases, or a row count when there are none."""
        picked: dict[str, Task] = {}
        for task in self.load_suite(SUITE):
            picked.setdefault(task.setup["db"], task)
        if picked:
            return list(picked.values())[:3]
        db = self.databases[0]
        table = self.describe(db)[0].name
        sql = f"SELECT count(*) FROM {table}"
        return [
            Task(
                env=self.name,
                instruction=f"How many rows does the table {table} have?",
                setup={"db": db},
                origin="user",
                gold={"sql": sql},
                reference=[sql, "submit"],
                name=f"sample-{db}-count",
            )
        ]


def _option(opts: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    try:
        return kind(opts.get(key, default))
    except (TypeError, ValueError):
        raise EnvError(
            f"env_options.sql.{key} must be a {kind.__name__}, got {opts.get(key)!r}"
        ) from None


def _options(config: Config) -> dict[str, Any]:
    opts = dict(config.env_options.get("sql", {}))
    if unknown := sorted(set(opts) - _OPTIONS):
        raise EnvError(f"unknown env_options.sql keys {unknown}; known: {sorted(_OPTIONS)}")
    return opts


def _data_dir(opts: dict[str, Any], config: Config) -> Path:
    return Path(opts.get("data_dir") or Path(config.run_root) / ".data" / "spider")


def shipped_data(arg: str, config: Config) -> Shipped:
    """The Spider SQLite files (converted on first use, as the environment does), or one."""
    files = ensure_databases(_data_dir(_options(config), config))
    if arg:
        files = {d: f for d, f in files.items() if d.lower() == arg.lower()}
        if not files:
            raise EnvError(f"unknown Spider database {arg!r}; see `lbi envs data sql`")
    return Shipped(files, note="converted from the Spider dump; env_options.sql.data_dir moves it")


@register_env(
    "sql",
    "SQL over the 20 Spider-dev databases (SQLite, or any MariaDB/MySQL URL); sql:NAME for one",
)
def make_sql_env(arg: str, config: Config) -> SqlEnv:
    opts = _options(config)
    data_dir = _data_dir(opts, config)
    files = ensure_databases(data_dir)
    timeout_s = _option(opts, "timeout_s", 5.0, float)
    fetch_cap = 100_000
    backend: Backend
    if opts.get("url"):
        from lbi.envs.sql.server_backend import ServerBackend

        server = ServerBackend(str(opts["url"]), timeout_s, fetch_cap)
        backend, key = server, server.safe_url
    else:
        backend, key = SqliteBackend(files, timeout_s, fetch_cap), f"sqlite:{data_dir.resolve()}"
    databases = list(files)
    if arg:
        match = [d for d in databases if d.lower() == arg.lower()]
        if not match:
            backend.close()
            raise EnvError(f"unknown Spider database {arg!r}; known: {', '.join(databases)}")
        databases = match
    return SqlEnv(
        backend,
        key,
        databases,
        _option(opts, "max_rows", 20, int),
        _option(opts, "max_chars", 3000, int),
    )
