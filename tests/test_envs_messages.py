"""Issue 28, messages that help: `envs check` shows what differed, says what it skipped and
always tries `close`; `envs list` names suites; `--docs` takes `module:ATTR`; `envs check -c`
reads `env:`; `envs data` finds shipped databases; a JSONL error names the file's line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config, load_config
from lbi.envs.base import SHIPPED_SUITES, EnvError, make_env
from lbi.envs.check import check_env, first_differences
from lbi.envs.suite_init import parse_seeds
from lbi.envs.toy import ToyEnv
from lbi.types import Task

PLUGINS = Path(__file__).parent / "plugins"
CHORES = "gym:chores:LbiChores-v0"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _game_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def test_first_differences_name_the_lines_and_count_the_rest() -> None:
    a = "\n".join(f"row {n}" for n in range(12))
    b = "\n".join(f"row {n}" if n % 2 else f"ROW {n}" for n in range(11))
    lines = first_differences("observation", a, b, n=3)
    assert lines == [
        "observation line 1: 'row 0' -> 'ROW 0'",
        "observation line 3: 'row 2' -> 'ROW 2'",
        "observation line 5: 'row 4' -> 'ROW 4'",
        "… and 4 more differing lines",  # rows 6, 8, 10, and row 11 that b lacks
    ]
    assert first_differences("x", "a", "a\nb") == ["x line 2: (none) -> 'b'"]


class _LeakyToy(ToyEnv):
    """The toy store whose `reset` shows a counter and whose `close` fails: two failures that
    must not hide the checks after them."""

    resets = 0

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        obs, info = super().reset(task, seed)
        _LeakyToy.resets += 1
        return f"{obs}\nresets so far: {_LeakyToy.resets}", info

    def digest_input(self) -> str:
        return f"counter {_LeakyToy.resets}"

    def state_digest(self) -> str:
        return self.digest_input()

    def close(self) -> None:
        raise OSError("socket already closed")


def test_a_failed_check_hides_nothing_and_close_always_runs() -> None:
    report = check_env(lambda: _LeakyToy(), cycles=1)
    by_name = {r.name: r for r in report.results}
    reset = by_name["reset reproducible"]
    assert not reset.ok and "differ" in reset.detail
    assert any(line.startswith("observation line") for line in reset.lines)
    assert any(line.startswith("state_digest input line 1: 'counter") for line in reset.lines)
    assert by_name["bad action -> error observation"].ok  # ran after the failed check
    assert by_name["reference solutions score"].ok  # toy-5's references
    assert not by_name["close"].ok and "OSError: socket already closed" in by_name["close"].detail
    assert not by_name["close frees resources"].ok  # tried, and it says why it failed
    assert "raised OSError" in by_name["close frees resources"].detail


def test_envs_check_says_what_it_skipped_and_why(tmp_path: Path) -> None:
    """No suite: the game's one sample task has no reference, so nothing can score."""
    args = ["envs", "check", CHORES, "--docs", "chores:MANUAL"]
    args += ["--set", "env_options.gym.kwargs.task=tidy"]
    done = runner.invoke(app, args)
    assert "skip reference solutions score  no task has a reference" in done.output
    assert "ok   docs  1 documents" in done.output  # the manual came from chores.MANUAL
    assert "ok   close frees resources" in done.output  # though reset reproducible failed
    assert done.exit_code == 1 and "observation line" in done.output


def test_envs_check_takes_the_environment_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("env: toy\n")
    done = runner.invoke(app, ["envs", "check", "-c", str(config)])
    assert done.exit_code == 0 and "toy: passed" in done.output, done.output


def test_docs_from_a_module_attribute_or_a_missing_one(tmp_path: Path) -> None:
    from lbi.envs.docs import docs_from_source

    (doc,) = docs_from_source("gym:x", "chores:MANUAL")
    assert doc.text.startswith("# Chores") and doc.source == "chores:MANUAL#0"
    with pytest.raises(FileNotFoundError, match="chores:NOTHING"):
        docs_from_source("gym:x", "chores:NOTHING")
    (tmp_path / "a.md").write_text("# A\n\ntext\n")
    assert [d.title for d in docs_from_source("gym:x", tmp_path)] == ["a"]


def test_envs_list_names_each_environments_suites(cfg: Config) -> None:
    done = runner.invoke(app, ["envs", "list"])
    assert done.exit_code == 0, done.output
    assert "toy-5" in done.output and "spider-dev-23" in done.output
    toy = make_env("toy", cfg)
    assert SHIPPED_SUITES["toy"] == ", ".join(toy.suites())
    toy.close()


def test_envs_data_prints_and_copies_a_shipped_database(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    done = runner.invoke(app, ["envs", "data", "sql:pets_1", "--set", f"run_root={root}"])
    assert done.exit_code == 0, done.output
    name, path = done.stdout.strip().split("\t")
    assert name == "pets_1" and Path(path) == (root / ".data/spider/pets_1.sqlite").resolve()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM pets").fetchone()[0] > 0
    con.close()
    assert not (root / "pets_1").exists()  # no run was made
    site = runner.invoke(app, ["envs", "data", "site"])
    assert site.exit_code == 2 and "--out" in site.output  # its file goes when the process ends
    done = runner.invoke(app, ["envs", "data", "site", "--out", str(tmp_path / "copy")])
    assert done.exit_code == 0 and (tmp_path / "copy" / "shop.db").is_file(), done.output


def test_suite_init_seeds_and_a_missing_info_key() -> None:
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    with pytest.raises(EnvError, match="--seeds"):
        parse_seeds("a-b")
    from lbi.envs.suite_init import suite_rows

    cfg = load_config(
        None, ["env_options.gym.docs=chores:MANUAL", "env_options.gym.kwargs.task=tidy"]
    )
    env = make_env(CHORES, cfg)
    try:
        with pytest.raises(EnvError, match="no 'solution' for the reference"):
            suite_rows(env, [0], [{"task": "wash"}], reference_from="solution")
        (row,) = suite_rows(env, [3], [])
    finally:
        env.close()
    assert row["name"] == "seed-3" and row["check"] == {"reward": 1.0}
    assert row["instruction_from"] == "task_description" and row["setup"] == {"seed": 3}


def test_what_the_digest_hashes_passes_through_a_suite_file() -> None:
    from lbi.envs.suite_file import SuiteFileEnv, with_suite

    cfg = load_config(None, ["env_options.gym.docs=chores:MANUAL"])
    env = with_suite(lambda: make_env(CHORES, cfg), str(PLUGINS / "chores_suite.jsonl"))()
    assert isinstance(env, SuiteFileEnv)
    try:
        obs, _ = env.reset(env.sample_tasks()[2], 0)  # wash-0: the game is made with task=wash
        assert env.digest_input() == obs and obs.startswith("Chore: Wash and then dry")
    finally:
        env.close()
