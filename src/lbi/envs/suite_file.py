"""A benchmark suite from a file, for any environment: `lbi eval --suite tasks.jsonl`.

One task per JSONL line (or a YAML list, or a YAML mapping `{db: ..., tasks: [...]}`):

    {"name": "q1", "instruction": "How many ...?", "setup": {"variation": 2, "seed": 7},
     "check": {"sql_answer": "SELECT count(*) FROM t"}, "reference": ["..."]}

`setup` goes to the environment's `reset` (`seed` overrides the episode seed; `db_fixture`, an
SQL script, is run on the check database first). `check` is one of:

- `{"answer": "24"}`: the agent's final answer, normalized (`"exact": true` compares verbatim);
- `{"sql_answer": "SELECT ..."}`: the final answer against the query's result;
- `{"sql": "SELECT ...", "expect": ...}`: database state after the episode (a value, or rows);
- `{"reward": 1.0}`: the episode's return (sum of the environment's rewards) at least this;
- `{"info": "won"}` (truthy), `{"info": "score", "min": 10}` or `{"info": KEY, "equals": V}`:
  a key of the last step's `info`;
- `{"python": "module:function"}`: `function(task, outcome) -> bool | float`.

SQL checks run on `check.db`, else the file's `db`, else the environment's own `db`; a path is
relative to the suite file, and anything with `://` is an SQLAlchemy URL. A suite that resets
or checks database state runs its episodes one at a time. `SuiteFileEnv` wraps
the environment: when the episode ends it scores the check and puts the score on the last step
(1.0 is a success), so every command that drives episodes evaluates it like a shipped suite.
"""

from __future__ import annotations

import ast
import importlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbi.envs.base import ActionSpace, EnvError, Environment, StepResult
from lbi.types import Doc, Task

SUFFIXES = (".jsonl", ".yaml", ".yml")
CHECKS = ("answer", "sql_answer", "sql", "reward", "info", "python")


def is_suite_file(name: str | None) -> bool:
    return bool(name) and str(name).lower().endswith(SUFFIXES)


@dataclass
class Outcome:
    """What an episode left behind, for a check."""

    actions: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    observation: str = ""

    @property
    def answer(self) -> str:
        if "answer" in self.info:
            return str(self.info["answer"])
        return final_answer(self.actions[-1]) if self.actions else ""


def final_answer(action: str) -> str:
    """`send_msg_to_user('24')` -> 24; `{"name": .., "arguments": {"content": "24"}}` -> 24;
    `submit 24` / `answer 24` -> 24; anything else is the answer itself."""
    text = action.strip()
    if text.startswith("{"):
        try:
            args = json.loads(text).get("arguments") or {}
            values = [v for v in args.values() if isinstance(v, str | int | float)]
            return str(values[0]) if values else ""
        except (ValueError, AttributeError):
            return text
    head, _, rest = text.partition("(")
    if rest.endswith(")") and head.isidentifier():
        try:
            value = ast.literal_eval(rest[:-1].strip() or "''")
            return str(value[0] if isinstance(value, tuple) else value)
        except (ValueError, SyntaxError):
            return rest[:-1]
    word, _, rest = text.partition(" ")
    return rest.strip() if word.lower() in ("submit", "answer", "finish") and rest else text


def normalize(text: Any) -> str:
    return " ".join(str(text).strip().strip("'\"").rstrip(".").lower().split())


def same(said: Any, want: Any) -> bool:
    a, b = normalize(said), normalize(want)
    try:
        return float(a.replace(",", "")) == float(b.replace(",", ""))
    except ValueError:
        return a == b


def query(db: str, sql: str) -> list[tuple[Any, ...]]:
    if "://" in db:
        import sqlalchemy

        engine = sqlalchemy.create_engine(db)
        try:
            with engine.connect() as sa_conn:
                return [tuple(r) for r in sa_conn.execute(sqlalchemy.text(sql))]
        finally:
            engine.dispose()
    conn = sqlite3.connect(db, timeout=30)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def _cells(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(normalize(c) for r in rows for c in r)


def _rows_match(rows: list[tuple[Any, ...]], expect: Any) -> bool:
    if not isinstance(expect, list):  # one value: the single cell
        return len(rows) == 1 and len(rows[0]) == 1 and same(rows[0][0], expect)
    want = [tuple(r) if isinstance(r, list) else (r,) for r in expect]
    key = lambda rs: sorted(tuple(normalize(c) for c in r) for r in rs)  # noqa: E731
    return len(rows) == len(want) and key(rows) == key(want)


def load_function(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not attr:
        raise EnvError(f"a python check needs module:function, got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise EnvError(f"python check {spec}: {e}") from None
    if not callable(fn):
        raise EnvError(f"python check {spec}: not callable")
    return fn  # type: ignore[no-any-return]


class Suite:
    """The tasks of one suite file, and how to score them."""

    def __init__(self, path: str | Path, env: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EnvError(f"suite file not found: {self.path}")
        self.db: str | None = None
        rows = self._rows()
        self.tasks = [self._task(i, row, env) for i, row in enumerate(rows)]
        if not self.tasks:
            raise EnvError(f"suite file {self.path} has no tasks")
        self.shares_db = any(
            "db_fixture" in t.setup or "sql" in t.gold["check"] for t in self.tasks
        )

    def _rows(self) -> list[dict[str, Any]]:
        import yaml

        text = self.path.read_text()
        try:
            if self.path.suffix == ".jsonl":
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            data = yaml.safe_load(text) or []
        except (ValueError, yaml.YAMLError) as e:
            raise EnvError(f"{self.path}: {e}") from None
        if isinstance(data, dict):
            self.db = data.get("db")
            data = data.get("tasks") or []
        if not isinstance(data, list):
            raise EnvError(f"{self.path}: expected a list of tasks")
        return data

    def _task(self, i: int, row: Any, env: str) -> Task:
        where = f"{self.path}: task {i + 1}"
        if not isinstance(row, dict) or not str(row.get("instruction", "")).strip():
            raise EnvError(f"{where}: needs an instruction")
        check = row.get("check")
        if not isinstance(check, dict) or not any(k in check for k in CHECKS):
            raise EnvError(f"{where}: needs a check, one of {', '.join(CHECKS)}")
        if "python" in check:
            load_function(str(check["python"]))  # fail now, not after the episode
        return Task(
            env=env,
            name=str(row.get("name") or f"{self.path.stem}-{i + 1}"),
            instruction=str(row["instruction"]),
            setup=dict(row.get("setup") or {}),
            origin="benchmark",
            gold={"check": check},
            reference=[str(a) for a in row.get("reference") or []],
        )

    def database(self, check: dict[str, Any], env: Environment) -> str:
        db = check.get("db") or self.db or getattr(env, "db", None)
        if not db:
            raise EnvError(f"{self.path}: an SQL check needs a database: give `db`")
        db = str(db)
        if "://" in db or Path(db).is_absolute():
            return db
        return str((self.path.parent / db).resolve())

    def score(self, task: Task, outcome: Outcome, env: Environment) -> float:
        check: dict[str, Any] = task.gold["check"]
        if "answer" in check:
            want = check["answer"]
            exact = outcome.answer.strip() == str(want)
            return float(exact if check.get("exact") else same(outcome.answer, want))
        if "sql_answer" in check:
            rows = query(self.database(check, env), str(check["sql_answer"]))
            if len(rows) == 1 and len(rows[0]) == 1:
                return float(same(outcome.answer, rows[0][0]))
            said = sorted(normalize(s) for s in outcome.answer.split(",") if s.strip())
            return float(said == _cells(rows))
        if "sql" in check:
            rows = query(self.database(check, env), str(check["sql"]))
            return float(_rows_match(rows, check.get("expect")))
        if "reward" in check:
            return float(sum(outcome.rewards) >= float(check["reward"]))
        if "info" in check:
            value = outcome.info.get(str(check["info"]))
            if "equals" in check:
                return float(value == check["equals"])
            if "min" in check:
                return float(value is not None and float(value) >= float(check["min"]))
            return float(bool(value))
        result = load_function(str(check["python"]))(task, outcome)
        return float(result)

    def prepare(self, task: Task, env: Environment) -> None:
        fixture = task.setup.get("db_fixture")
        if not fixture:
            return
        path = Path(str(fixture))
        script = (path if path.is_absolute() else self.path.parent / path).read_text()
        db = self.database(task.gold.get("check", {}), env)
        if "://" in db:
            raise EnvError("db_fixture needs a SQLite database file")
        conn = sqlite3.connect(db, timeout=30)
        try:
            conn.executescript(script)
            conn.commit()
        finally:
            conn.close()


class SuiteFileEnv:
    """Any environment, with its benchmark tasks and success checks from a suite file."""

    def __init__(self, env: Environment, suite: Suite) -> None:
        self.env, self.suite = env, suite
        # Tasks that reset or check a shared database run one at a time.
        self.name, self.max_concurrency = env.name, 1 if suite.shares_db else env.max_concurrency
        self._task: Task | None = None
        self._outcome = Outcome()

    def docs(self) -> list[Doc]:
        return self.env.docs()

    def action_space(self) -> ActionSpace:
        return self.env.action_space()

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self._task, self._outcome = task, Outcome()
        self.suite.prepare(task, self.env)
        setup = {k: v for k, v in task.setup.items() if k != "db_fixture"}
        if "seed" in setup:
            seed = int(setup["seed"])
        inner = task.model_copy(update={"setup": setup, "gold": {}})
        return self.env.reset(inner, seed)

    def step(self, action: str) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._outcome.actions.append(action)
        self._outcome.rewards.append(float(reward))
        self._outcome.info, self._outcome.observation = dict(info), obs
        if self._task is None or not (terminated or truncated):
            return obs, reward, terminated, truncated, info
        score = self.suite.score(self._task, self._outcome, self.env)
        info = {**info, "env_reward": reward, "success": score >= 1.0}
        return obs, score, terminated, truncated, info

    def state_digest(self) -> str:
        return self.env.state_digest()

    def close(self) -> None:
        self.env.close()

    def suites(self) -> list[str]:
        return [str(self.suite.path)]

    def load_suite(self, name: str) -> list[Task]:
        return list(self.suite.tasks)

    def sample_tasks(self) -> list[Task]:
        return list(self.suite.tasks)


def with_suite(make: Callable[[], Environment], suite: str | None) -> Callable[[], Environment]:
    """The hook: `make` unchanged for a shipped suite, wrapped for a suite file."""
    if not is_suite_file(suite):
        return make
    probe = make()
    try:
        parsed = Suite(str(suite), probe.name)
    finally:
        probe.close()
    return lambda: SuiteFileEnv(make(), parsed)
