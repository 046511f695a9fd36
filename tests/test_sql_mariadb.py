"""The `sql` environment on a real MariaDB server (`scripts/mariadb.sh start`; `make test` does it).

The server is found at $LBI_MARIADB_URL (default: the `lbi` user on 127.0.0.1:$LBI_MARIADB_PORT,
3307). In CI a missing server fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from conftest import require
from lbi.config import Config
from lbi.envs.base import EnvError, make_env
from lbi.envs.sql.env import SUITE, SqlEnv
from lbi.envs.sql.server_backend import ServerBackend
from lbi.types import Task

pytestmark = pytest.mark.mariadb

PORT = os.environ.get("LBI_MARIADB_PORT", "3307")
URL = os.environ.get("LBI_MARIADB_URL", f"mysql+pymysql://lbi:lbi@127.0.0.1:{PORT}/{{db}}")


@pytest.fixture(scope="session")
def server_url() -> str:
    try:
        ServerBackend(URL, 5.0, 10).close()
        reachable, why = True, ""
    except EnvError as e:
        reachable, why = False, str(e)
    require(reachable, f"MariaDB for the sql env ({why})")
    return URL


@pytest.fixture(scope="module")
def config(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    data = tmp_path_factory.mktemp("spider")
    return Config(env_options={"sql": {"data_dir": str(data), "url": server_url, "timeout_s": 0.5}})


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


def test_every_gold_query_scores_one(env: SqlEnv) -> None:
    assert env.backend.label.startswith("MariaDB")
    for task in env.load_suite(SUITE):
        env.reset(task)
        obs, _, _, _, info = env.step(task.reference[0])
        assert not info["error"], obs
        assert env.step("submit")[1] == 1.0, task.name


def test_the_floor_action_runs_on_mariadb_and_hands_in_an_empty_answer(env: SqlEnv) -> None:
    finish = env.action_space().finish
    assert finish
    rewards = []
    for task in env.load_suite(SUITE):
        env.reset(task)
        obs, reward, terminated, _, info = env.step(finish)
        assert terminated and info["submitted_rows"] == 0, obs
        rewards.append(reward)
    assert sum(rewards) == 3.0


def test_wrong_and_reordered_answers_score_zero(env: SqlEnv) -> None:
    dogs = _task(env, "number of dog pets that are raised by female")
    assert _answer(env, dogs, "SELECT count(*) FROM Pets") == 0.0
    ordered = _task(env, "ascending alphabetical order")
    assert (
        _answer(
            env, ordered, ordered.gold["sql"].replace("ORDER BY T3.Name", "ORDER BY T3.Name DESC")
        )
        == 0.0
    )
    unordered = _task(env, "Show names of teachers and the courses they are arranged to teach.")
    assert _answer(env, unordered, unordered.gold["sql"] + " ORDER BY T2.Course DESC") == 1.0


def test_writes_stay_in_their_episode_and_sources_are_read_only(env: SqlEnv) -> None:
    task = _task(env, "number of dog pets that are raised by female")
    env.reset(task)
    fresh = env.state_digest()
    assert env.step("DELETE FROM Student WHERE Sex = 'F'")[4]["affected"] > 0
    assert env.step("CREATE TABLE notes (x INT)")[4]["error"] is False  # DDL works in the copy
    assert env.state_digest() != fresh
    obs, _, _, _, info = env.step("DELETE FROM pets_1.Student")
    assert info["error"] and "denied" in obs
    env.reset(task)
    assert env.state_digest() == fresh
    assert "34" in env.step("SELECT count(*) FROM Student")[0]


def test_the_copy_matches_the_sqlite_conversion(env: SqlEnv, config: Config) -> None:
    sqlite_cfg = Config(env_options={"sql": {"data_dir": config.env_options["sql"]["data_dir"]}})
    local = make_env("sql", sqlite_cfg)
    for db in ("pets_1", "world_1", "dog_kennels"):
        task = Task(env="sql", instruction="x", setup={"db": db})
        env.reset(task)
        local.reset(task)
        assert env.state_digest() == local.state_digest(), db
    local.close()


def test_a_runaway_statement_is_stopped(env: SqlEnv) -> None:
    env.reset(env.sample_tasks()[0])
    start = time.monotonic()
    obs, _, terminated, _, info = env.step("SELECT SLEEP(5)")
    assert time.monotonic() - start < 3.0
    assert info["error"] and "limit" in obs and not terminated
    assert not env.step("SELECT 1")[4]["error"]


@pytest.mark.parametrize(
    "action",
    ["", "hello world", "SELECT 1; SELECT 2", "SELECT * FROM Student INTO OUTFILE '/tmp/x'"],
)
def test_garbage_and_forbidden_actions_are_error_observations(env: SqlEnv, action: str) -> None:
    env.reset(env.sample_tasks()[0])
    obs, reward, terminated, _, info = env.step(action)
    assert obs.startswith("Error:") and info["error"] and (reward, terminated) == (0.0, False)


def test_docs_come_from_the_server(env: SqlEnv) -> None:
    docs = env.docs()
    assert "MariaDB" in docs[0].text and "SHOW TABLES" in docs[0].text
    pets = next(d for d in docs if d.source == "spider/pets_1")
    assert "int(11)" in pets.text and "Sample rows:" in pets.text


def test_close_drops_the_private_database(config: Config) -> None:
    env = make_env("sql:pets_1", config)
    assert isinstance(env, SqlEnv)
    env.reset(env.sample_tasks()[0])
    scratch = env._episode.scratch  # type: ignore[union-attr]
    env.close()
    probe = make_env("sql:pets_1", config)
    probe.reset(probe.sample_tasks()[0])
    obs, *_ = probe.step(f"SHOW DATABASES LIKE '{scratch}'")
    assert obs.endswith("(0 rows)")
    probe.close()
