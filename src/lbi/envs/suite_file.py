"""A benchmark suite from a file, for any environment: `lbi eval --suite tasks.jsonl`.

One task per JSONL line (or a YAML list, or a YAML mapping `{db: ..., tasks: [...]}`):

    {"name": "q1", "instruction": "How many ...?", "setup": {"variation": 2, "seed": 7},
     "check": {"sql_answer": "SELECT count(*) FROM t"}, "reference": ["..."]}

`setup` goes to the environment's `reset` (`seed` overrides the episode seed; `db_fixture`, an
SQL script, is run on the check database first; `make_kwargs`, for `gym:`, are the game's
constructor arguments). A task may take its instruction and its reference actions from the
environment instead: `instruction_from: KEY` and `reference_from: KEY` name keys of the `info`
its `reset` returns (read once, when the suite is loaded, at the task's `setup.seed` or 0).
A reference may write `{base}` for the environment's base URL (`site`). `check` is one of:

- `{"answer": "24"}`: the agent's final answer, normalized (`"exact": true` compares verbatim);
- `{"sql_answer": "SELECT ..."}`: the final answer against the query's result;
- `{"sql": "SELECT ...", "expect": ...}`: database state after the episode (a value, or rows);
- `{"reward": 1.0}`: the episode's return (sum of the environment's rewards) at least this;
- `{"info": "won"}` (truthy), `{"info": "score", "min": 10}` or `{"info": KEY, "equals": V}`:
  a key of the last step's `info`;
- `{"python": "module:function"}`: `function(task, outcome) -> bool | float`.

SQL checks run on `check.db`, else the file's `db`, else the environment's own `db`; a path is
relative to the suite file, and anything with `://` is an SQLAlchemy URL. A suite that resets
or checks database state runs its episodes one at a time. When the suite is loaded, every SQL
check must have a database and compile against it (suite_sql.py); errors name the JSONL line.
`SuiteFileEnv` wraps the environment: when the episode ends it scores the check and puts the
score on the last step (1.0 is a success), so every command that drives episodes evaluates it
like a shipped suite.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbi.envs.base import ActionSpace, EnvError, Environment, StepResult
from lbi.envs.suite_answers import (
    Outcome,
    cells,
    final_answer,
    load_function,
    normalize,
    rows_match,
    same,
)
from lbi.envs.suite_init import as_actions, info_after_reset, info_value
from lbi.envs.suite_sql import SqlChecker, query
from lbi.types import Doc, Task

__all__ = ["Outcome", "Suite", "SuiteFileEnv", "final_answer", "same", "with_suite"]

SUFFIXES = (".jsonl", ".yaml", ".yml")
CHECKS = ("answer", "sql_answer", "sql", "reward", "info", "python")


def is_suite_file(name: str | None) -> bool:
    return bool(name) and str(name).lower().endswith(SUFFIXES)


class Suite:
    """The tasks of one suite file, and how to score them. `source`, an instance of the
    environment, answers `instruction_from`/`reference_from` and `{base}`."""

    def __init__(self, path: str | Path, env: str, source: Environment | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EnvError(f"suite file not found: {self.path}")
        self.db: str | None = None
        rows = self._rows()
        self.tasks = [self._task(n, where, row, env, source) for n, (where, row) in enumerate(rows)]
        if not self.tasks:
            raise EnvError(f"suite file {self.path} has no tasks")
        self.shares_db = any(
            "db_fixture" in t.setup or "sql" in t.gold["check"] for t in self.tasks
        )

    def _rows(self) -> list[tuple[str, Any]]:
        """Each task with where it is: `line N` of a JSONL file, `task N` of a YAML one."""
        import yaml

        text = self.path.read_text()
        if self.path.suffix == ".jsonl":
            rows = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append((f"line {n}", json.loads(line)))
                    except ValueError as e:
                        why = getattr(e, "msg", str(e))
                        col = getattr(e, "colno", None)
                        at = f" (column {col})" if col else ""
                        raise EnvError(f"{self.path}: line {n} is not JSON: {why}{at}") from None
            return rows
        try:
            data = yaml.safe_load(text) or []
        except yaml.YAMLError as e:
            raise EnvError(f"{self.path}: {' '.join(str(e).split())}") from None
        if isinstance(data, dict):
            self.db = data.get("db")
            data = data.get("tasks") or []
        if not isinstance(data, list):
            raise EnvError(f"{self.path}: expected a list of tasks")
        return [(f"task {n + 1}", row) for n, row in enumerate(data)]

    def _task(self, i: int, at: str, row: Any, env: str, source: Environment | None) -> Task:
        where = f"{self.path}: {at}"
        if not isinstance(row, dict):
            raise EnvError(f"{where}: a task is a mapping with an instruction and a check")
        asks = {k: str(row[k]) for k in ("instruction_from", "reference_from") if row.get(k)}
        if not str(row.get("instruction", "")).strip() and "instruction_from" not in asks:
            raise EnvError(f"{where}: needs an instruction (or instruction_from: INFO_KEY)")
        check = row.get("check")
        if not isinstance(check, dict) or not any(k in check for k in CHECKS):
            raise EnvError(f"{where}: needs a check, one of {', '.join(CHECKS)}")
        if "python" in check:
            load_function(str(check["python"]))  # fail now, not after the episode
        setup = dict(row.get("setup") or {})
        instruction = str(row.get("instruction", ""))
        reference = [str(a) for a in row.get("reference") or []]
        if asks:
            if source is None:
                raise EnvError(f"{where}: instruction_from/reference_from need the environment")
            info = info_after_reset(source, setup, where)
            if "instruction_from" in asks:
                instruction = str(info_value(info, asks["instruction_from"], where))
            if "reference_from" in asks:
                reference = as_actions(info_value(info, asks["reference_from"], where))
        base = getattr(source, "base", None)
        if base:
            reference = [a.replace("{base}", str(base)) for a in reference]
        return Task(
            env=env,
            name=str(row.get("name") or f"{self.path.stem}-{i + 1}"),
            instruction=instruction,
            setup=setup,
            origin="benchmark",
            gold={"check": check},
            reference=reference,
        )

    def validate(self, env: Environment) -> None:
        """Every SQL check has a database and compiles against it (after the task's fixture)."""
        checker = SqlChecker()
        try:
            for task in self.tasks:
                check: dict[str, Any] = task.gold["check"]
                for key in ("sql_answer", "sql"):
                    if key not in check:
                        continue
                    db = self.database(check, env, task)
                    fixture = self._fixture(task)
                    why = checker.compile(
                        db, str(check[key]), fixture.read_text() if fixture else ""
                    )
                    if why:
                        raise EnvError(f"{self.path}: task {task.name}: the {key} check: {why}")
        finally:
            checker.close()

    def _fixture(self, task: Task) -> Path | None:
        fixture = task.setup.get("db_fixture")
        if not fixture:
            return None
        path = Path(str(fixture))
        path = path if path.is_absolute() else self.path.parent / path
        if not path.is_file():
            raise EnvError(f"{self.path}: task {task.name}: db_fixture {path} does not exist")
        return path

    def database(self, check: dict[str, Any], env: Environment, task: Task | None = None) -> str:
        db = check.get("db") or self.db or getattr(env, "db", None)
        if not db:
            which = f"task {task.name}: " if task else ""
            raise EnvError(
                f"{self.path}: {which}an SQL check needs a database: give `db` on the check "
                "(or at the top of a YAML suite: {db: FILE, tasks: [...]})"
            )
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
            return float(said == cells(rows))
        if "sql" in check:
            rows = query(self.database(check, env), str(check["sql"]))
            return float(rows_match(rows, check.get("expect")))
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
        path = self._fixture(task)
        if path is None:
            return
        script = path.read_text()
        db = self.database(task.gold.get("check", {}), env, task)
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

    def digest_input(self) -> str | None:
        """What the wrapped environment's digest hashes, where it says (lbi envs check)."""
        read = getattr(self.env, "digest_input", None)
        return str(read()) if callable(read) else None

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
        parsed = Suite(str(suite), probe.name, source=probe)
        parsed.validate(probe)
    finally:
        probe.close()
    return lambda: SuiteFileEnv(make(), parsed)
