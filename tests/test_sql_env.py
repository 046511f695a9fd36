"""The `sql` environment on SQLite: gold answers, scoring, isolation, safety, digests, docs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.envs.base import EnvError, Environment, make_env
from lbi.envs.check import check_env
from lbi.envs.sql.env import SUITE, SqlEnv
from lbi.envs.sql.scoring import is_ordered, normalize_value, results_match
from lbi.types import Task


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    data = tmp_path_factory.mktemp("spider")
    return Config(
        run_root=str(data.parent), env_options={"sql": {"data_dir": str(data), "timeout_s": 0.5}}
    )


@pytest.fixture
def env(config: Config) -> Iterator[SqlEnv]:
    e = make_env("sql", config)
    assert isinstance(e, SqlEnv)
    yield e
    e.close()


def _task(env: SqlEnv, name_part: str) -> Task:
    return next(t for t in env.load_suite(SUITE) if name_part in t.instruction)


def _answer(env: SqlEnv, task: Task, sql: str) -> float:
    env.reset(task)
    obs, reward, terminated, _, info = env.step(f"submit {sql}")
    assert terminated and not info["error"], obs
    return reward


def test_is_an_environment_with_a_23_task_suite(env: SqlEnv) -> None:
    assert isinstance(env, Environment)
    assert env.suites() == [SUITE]
    tasks = env.load_suite(SUITE)
    assert len(tasks) == 23
    assert {t.origin for t in tasks} == {"benchmark"} and all(t.env == "sql" for t in tasks)
    assert all(
        t.reference == [t.gold["sql"], "submit"] and t.setup["db"] in env.databases for t in tasks
    )
    assert len({t.name for t in tasks}) == 23


def test_every_gold_query_scores_one(env: SqlEnv) -> None:
    for task in env.load_suite(SUITE):
        obs, info = env.reset(task)
        assert info["db"] == task.setup["db"] and task.setup["db"] in obs
        result = env.step(task.reference[0])
        assert not result[4]["error"], result[0]
        _, reward, terminated, truncated, info = env.step("submit")
        assert (reward, terminated, truncated, info["correct"]) == (1.0, True, False, True), (
            task.name
        )


def test_wrong_answers_score_zero(env: SqlEnv) -> None:
    dogs = _task(env, "number of dog pets that are raised by female")
    assert _answer(env, dogs, dogs.gold["sql"]) == 1.0
    assert _answer(env, dogs, "SELECT count(*) FROM Pets") == 0.0
    assert _answer(env, dogs, "SELECT 2, 1") == 0.0  # an extra column is wrong too


def test_an_empty_answer_is_right_exactly_where_the_gold_is_empty(env: SqlEnv) -> None:
    rewards = [_answer(env, t, "SELECT 1 WHERE 0") for t in env.load_suite(SUITE)]
    assert sum(rewards) == 3.0  # the dataset quirk: 3 of 23 gold answers are empty


def test_row_order_counts_only_when_the_gold_orders(env: SqlEnv) -> None:
    ordered = _task(env, "ascending alphabetical order")
    assert is_ordered(ordered.gold["sql"])
    reversed_sql = ordered.gold["sql"].replace("ORDER BY T3.Name", "ORDER BY T3.Name DESC")
    assert _answer(env, ordered, reversed_sql) == 0.0
    unordered = _task(env, "Show names of teachers and the courses they are arranged to teach.")
    assert not is_ordered(unordered.gold["sql"])
    assert _answer(env, unordered, unordered.gold["sql"] + " ORDER BY T2.Course DESC") == 1.0


def test_writes_stay_in_their_episode(env: SqlEnv, config: Config) -> None:
    task = _task(env, "number of dog pets that are raised by female")
    env.reset(task)
    fresh = env.state_digest()
    obs, _, _, _, info = env.step("DELETE FROM Student WHERE Sex = 'F'")
    assert not info["error"] and info["affected"] > 0, obs
    assert env.step("SELECT count(*) FROM Student")[4]["rows"] == 1
    changed = env.state_digest()
    assert changed != fresh
    env.reset(task)
    assert env.state_digest() == fresh
    assert "34" in env.step("SELECT count(*) FROM Student")[0]
    other = make_env("sql:pets_1", config)
    other.reset(task)
    assert other.state_digest() == fresh  # another instance starts from the same state
    other.close()


def test_attach_extensions_and_file_writes_are_refused(env: SqlEnv, tmp_path: Path) -> None:
    env.reset(env.sample_tasks()[0])
    for action in (
        f"ATTACH DATABASE '{tmp_path / 'x.db'}' AS x",
        f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        "SELECT load_extension('mod_spatialite')",
    ):
        obs, reward, terminated, _, info = env.step(action)
        assert info["error"] and obs.startswith("Error:") and not terminated and reward == 0.0
    assert not list(tmp_path.iterdir())


def test_a_runaway_statement_is_stopped(env: SqlEnv) -> None:
    env.reset(env.sample_tasks()[0])
    start = time.monotonic()
    obs, _, terminated, _, info = env.step(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    assert time.monotonic() - start < 3.0
    assert info["error"] and "limit" in obs and not terminated
    assert not env.step("SELECT 1")[4]["error"]  # the episode goes on


@pytest.mark.parametrize(
    "action", ["", "   ", "hello world", "```\n```", "SELECT FROM WHERE", "SELECT 1; SELECT 2"]
)
def test_garbage_comes_back_as_an_error_observation(env: SqlEnv, action: str) -> None:
    env.reset(env.sample_tasks()[0])
    obs, reward, terminated, truncated, info = env.step(action)
    assert (
        obs.startswith("Error:")
        and info["error"]
        and (reward, terminated, truncated) == (0.0, False, False)
    )


def test_step_outside_an_episode_is_an_error_observation(env: SqlEnv) -> None:
    assert env.step("SELECT 1")[4]["error"]
    task = env.sample_tasks()[0]
    env.reset(task)
    env.step("submit SELECT 1")
    obs, _, terminated, _, info = env.step("SELECT 1")
    assert info["error"] and terminated and "reset" in obs


def test_submit_forms(env: SqlEnv) -> None:
    task = _task(env, "number of dog pets that are raised by female")
    env.reset(task)
    env.step(task.gold["sql"])
    env.step("UPDATE Pets SET pet_age = 1")  # a write does not replace the last table
    assert env.step("submit")[1] == 1.0
    env.reset(task)
    obs, _, terminated, _, info = env.step("submit SELEC 1")
    assert info["error"] and not terminated and "nothing was submitted" in obs
    assert env.step("submit DELETE FROM Pets")[4]["error"]
    no_gold = Task(env="sql", instruction="delete the dogs", setup={"db": "pets_1"})
    env.reset(no_gold)
    env.step("SELECT count(*) FROM Pets")
    assert env.step("submit")[1:4] == (0.0, True, False)


def test_a_bare_submit_before_any_table_is_refused_and_the_episode_goes_on(env: SqlEnv) -> None:
    """The trap a model fell into: the query written in REASON, then `submit` with nothing run."""
    task = _task(env, "number of dog pets that are raised by female")
    env.reset(task)
    env.step("UPDATE Pets SET pet_age = 1")  # a write returns no table
    obs, reward, terminated, _, info = env.step("submit")
    assert info["error"] and not terminated and reward == 0.0
    assert "nothing to submit" in obs and "submit <query>" in obs
    env.step(task.gold["sql"])
    assert env.step("submit")[1:3] == (1.0, True)


def test_the_floor_action_hands_in_an_empty_answer(env: SqlEnv) -> None:
    finish = env.action_space().finish
    assert finish and finish.startswith("submit ")
    rewards = []
    for task in env.load_suite(SUITE):
        env.reset(task)
        _, reward, terminated, _, info = env.step(finish)
        assert terminated and info["submitted_rows"] == 0
        rewards.append(reward)
    assert sum(rewards) == 3.0


def test_results_are_truncated_with_the_total(config: Config) -> None:
    cfg = config.model_copy(deep=True)
    cfg.env_options["sql"]["max_rows"] = 5
    env = make_env("sql:world_1", cfg)
    env.reset(env.sample_tasks()[0])
    obs, *_ = env.step("SELECT * FROM city")
    assert obs.count("\n") == 6 and obs.endswith("(showing 5 of 4079 rows)")
    env.close()


def test_narrowing_and_bad_options(config: Config) -> None:
    env = make_env("sql:PETS_1", config)
    assert isinstance(env, SqlEnv)
    assert env.databases == ["pets_1"] and len(env.load_suite(SUITE)) == 8
    with pytest.raises(EnvError, match="names database 'world_1'"):
        env.reset(Task(env="sql", instruction="x", setup={"db": "world_1"}))
    env.reset(Task(env="sql", instruction="x"))  # one database: the task need not name it
    env.close()
    with pytest.raises(EnvError, match="unknown Spider database"):
        make_env("sql:nope", config)
    with pytest.raises(EnvError, match=r"unknown env_options\.sql keys"):
        make_env("sql", Config(env_options={"sql": {**config.env_options["sql"], "colour": 1}}))
    with pytest.raises(EnvError, match="suite"):
        env.load_suite("spider-train")


def test_a_bad_server_url_is_a_readable_error(config: Config) -> None:
    data = config.env_options["sql"]["data_dir"]
    with pytest.raises(EnvError, match="MariaDB/MySQL URL"):
        make_env(
            "sql",
            Config(env_options={"sql": {"data_dir": data, "url": "postgresql://x@127.0.0.1/{db}"}}),
        )
    with pytest.raises(EnvError, match="cannot connect"):
        make_env(
            "sql",
            Config(
                env_options={
                    "sql": {"data_dir": data, "url": "mysql+pymysql://lbi:x@127.0.0.1:1/{db}"}
                }
            ),
        )


def test_a_task_without_a_database_needs_one(env: SqlEnv) -> None:
    with pytest.raises(EnvError, match="names no database"):
        env.reset(Task(env="sql", instruction="x"))


def test_docs_describe_every_database(env: SqlEnv) -> None:
    docs = env.docs()
    guide = docs[0]
    assert guide.source == "guide" and "submit" in guide.text and "SQLite" in guide.text
    by_db = {d.source.removeprefix("spider/") for d in docs[1:]}
    assert by_db == set(env.databases)
    pets = next(d for d in docs if d.source == "spider/pets_1")
    assert pets.text.startswith("# Database `pets_1`") and "## Table `student`" in pets.text
    assert pets.setup == {"db": "pets_1"}
    assert "PK" in pets.text and "-> `student`.`StuID`" in pets.text and "Sample rows:" in pets.text
    assert "The table is empty." in next(d for d in docs if d.source == "spider/wta_1").text
    assert all(len(d.text) < 6000 for d in docs)
    # A task synthesised from a doc starts on the doc's database.
    obs, info = env.reset(Task(env="sql", instruction="x", doc_id=pets.id))
    assert info["db"] == "pets_1" and "student(StuID* INTEGER" in obs


def test_action_space_and_sample_tasks(env: SqlEnv) -> None:
    space = env.action_space()
    assert "submit" in space.description and space.grammar and '"submit"' in space.grammar
    assert "\n" not in space.grammar
    for task in env.sample_tasks():
        env.reset(task)
        rewards = [env.step(a)[1] for a in task.reference]
        assert rewards[-1] == 1.0


def test_passes_the_environment_checker(config: Config) -> None:
    report = check_env(lambda: make_env("sql", config))
    assert report.ok, [r for r in report.results if not r.ok]
    assert {r.name for r in report.results} >= {
        "reset reproducible",
        "reference solutions score",
        "close frees resources",
    }


def test_value_normalisation_and_matching() -> None:
    assert normalize_value(1) == normalize_value(1.0) == normalize_value(Decimal("1.0000"))
    assert normalize_value(0.1 + 0.2) == normalize_value(0.3)
    assert normalize_value(b"ab") == "ab" and normalize_value(None) is None
    assert results_match([(1, "a"), (2, "b")], [(2.0, "b"), (1, "a")], ordered=False)
    assert not results_match([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], ordered=True)
    assert not results_match([(1,), (1,)], [(1,)], ordered=False)  # multisets, not sets
    assert not results_match([("Kyle",)], [("kyle",)], ordered=False)
    assert is_ordered("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1")
    assert not is_ordered("SELECT a FROM (SELECT a FROM t ORDER BY a) AS x")
