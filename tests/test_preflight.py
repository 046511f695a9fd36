"""Issue 28: a user's environment fails before the first model call, in one line, exit 2, with
no run folder left behind. The model is `scripted:log=FILE`, which writes one line per call it
answers, so "no model call" is an empty log; each case has a good twin that does call it.

The game is tests/plugins/chores.py: its constructor takes the task (a `ValueError` for one it
does not know; Python's `TypeError` for an argument it does not take), its reset takes no
options (a `ValueError` for any)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app

PLUGINS = Path(__file__).parent / "plugins"
CHORES = "gym:chores:LbiChores-v0"
GYM = [
    "embed.name=hash",
    "synth.max_tasks=1",
    "env_options.gym.docs=chores:MANUAL",
    "env_options.gym.success_info=won",
]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _game_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def _task(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "name": "t",
        "instruction_from": "task_description",
        "reference_from": "gold_actions",
        "setup": {"seed": 0, "make_kwargs": {"task": "tidy"}},
        "check": {"info": "won"},
    }
    return {**row, **fields}


def _suite(path: Path, *rows: dict[str, object]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(tmp_path: Path, argv: list[str], sets: list[str]) -> tuple[int, str, list[str]]:
    """Exit code, output and the model calls made, for `lbi ARGV` with a fresh run root."""
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    args = [*argv, "--model", f"scripted:log={log}"]
    for s in [f"run_root={tmp_path / 'runs'}", *sets]:
        args += ["--set", s]
    done = runner.invoke(app, args)
    calls = log.read_text().splitlines() if log.is_file() else []
    return done.exit_code, done.output, calls


def _refused(tmp_path: Path, argv: list[str], sets: list[str], *words: str) -> str:
    code, output, calls = _run(tmp_path, argv, sets)
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1, output
    assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), lines[0]
    assert calls == []
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
    return lines[0]


def test_a_good_game_calls_the_model_and_makes_a_run_folder(tmp_path: Path) -> None:
    """The twin of every case below: the same commands with good inputs do both."""
    suite = _suite(tmp_path / "s.jsonl", _task())
    code, output, calls = _run(tmp_path, ["eval", "--env", CHORES, "--suite", suite], GYM)
    assert code == 0, output
    assert len(calls) >= 10 and (tmp_path / "runs").is_dir()  # the 10-step gold, replayed
    tidy = [*GYM, "env_options.gym.kwargs.task=tidy"]  # the constructor needs a task
    code, output, calls = _run(tmp_path, ["synth", "--env", CHORES, "--run", "s"], tidy)
    assert code == 0 and calls, output


@pytest.mark.parametrize("command", ["synth", "eval", "envs check"])
def test_an_unknown_constructor_option_is_one_line(tmp_path: Path, command: str) -> None:
    argv = ["envs", "check", CHORES] if command == "envs check" else [command, "--env", CHORES]
    if command == "eval":
        argv += ["--suite", _suite(tmp_path / "s.jsonl", _task())]
    bad = [*GYM, "env_options.gym.kwargs.level=3"]
    _refused(tmp_path, argv, bad, CHORES, "'level': 3", "TypeError", "unexpected keyword")


def test_a_make_that_raises_value_error_is_one_line(tmp_path: Path) -> None:
    """`kwargs.task=nope` for every task; a task's own `make_kwargs` would take its place."""
    plain = {"instruction": "Tidy.", "check": {"info": "won"}}
    for command in ("synth", "eval"):
        argv = [command, "--env", CHORES, "--run", "r"]
        if command == "eval":
            argv += ["--suite", _suite(tmp_path / "s.jsonl", plain)]
        bad = [*GYM, "env_options.gym.kwargs.task=nope"]
        _refused(tmp_path, argv, bad, CHORES, "ValueError", "unknown task 'nope'")


def test_experiment_paper_resets_every_setup_of_its_suite_first(tmp_path: Path) -> None:
    """A plug-in whose reset fails on the second task of its own suite (counter-3)."""
    paper = ["experiment", "paper", "--env", "counter_mod:make_stuck_env", "--out", str(tmp_path)]
    line = _refused(tmp_path, paper, ["embed.name=hash"], "reset on task to-2", "{'start': 5}")
    assert "ConnectionRefusedError: the counter service at 127.0.0.1:9 refused" in line


def test_a_task_option_the_game_refuses_at_reset_is_one_line(tmp_path: Path) -> None:
    """Only the second task of the suite is bad: the pre-flight resets each distinct setup."""
    bad_option = _task(name="two", setup={"seed": 0, "make_kwargs": {"task": "wash"}, "hue": 1})
    suite = _suite(tmp_path / "s.jsonl", _task(), bad_option)
    for argv in (["eval", "--env", CHORES, "--suite", suite], ["envs", "check", CHORES]):
        if argv[0] == "envs":
            argv += ["--suite", suite]
        line = _refused(tmp_path, argv, GYM, "s.jsonl: line 2", "hue", "unknown reset option")
        assert "ValueError" in line
    bad_task = _task(setup={"seed": 0, "make_kwargs": {"task": "sweep"}})
    suite = _suite(tmp_path / "s.jsonl", bad_task)
    _refused(tmp_path, ["eval", "--env", CHORES, "--suite", suite], GYM, "unknown task 'sweep'")


def test_a_bad_reset_without_instruction_from_is_found_by_the_preflight(tmp_path: Path) -> None:
    """A suite that states its instructions is not reset when loaded: the pre-flight finds it."""
    good = {"name": "a", "instruction": "Tidy.", "check": {"info": "won"}}
    bad = {**good, "name": "b", "setup": {"hue": 1}}
    suite = _suite(tmp_path / "s.jsonl", good, bad)
    tidy = [*GYM, "env_options.gym.kwargs.task=tidy"]  # the tasks name none: the default's
    argv = ["eval", "--env", CHORES, "--suite", suite]
    line = _refused(tmp_path, argv, tidy, "reset on task b with setup")
    assert "{'hue': 1}" in line and "unknown reset option" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.browser
def test_a_site_url_with_nothing_listening_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/"
    docs = str(PLUGINS / "library" / "docs")
    suite = tmp_path / "q.yaml"
    suite.write_text("- {instruction: 'How many books?', check: {answer: '5'}}\n")
    for argv in (
        ["envs", "check", "site"],
        ["synth", "--env", "site"],
        ["eval", "--env", "site", "--suite", str(suite)],
    ):
        line = _refused(tmp_path, [*argv, "--url", url, "--docs", docs], ["embed.name=hash"], url)
        assert "ERR_CONNECTION_REFUSED" in line


def test_a_sql_check_on_a_missing_table_or_without_a_database_is_one_line(
    tmp_path: Path,
) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "shop.db")
    con.execute("CREATE TABLE items (name TEXT)")
    con.close()
    count = {"instruction": "Count the items.", "name": "ok"}
    ok = {**count, "check": {"sql_answer": "SELECT count(*) FROM items", "db": "shop.db"}}
    missing = {**count, "name": "m", "check": {"sql": "SELECT * FROM nope", "db": "shop.db"}}
    suite = _suite(tmp_path / "s.jsonl", ok, missing)
    for argv in (["eval", "--env", "toy", "--suite", suite], ["envs", "check", "toy"]):
        if argv[0] == "envs":
            argv += ["--suite", suite]
        _refused(tmp_path, argv, ["embed.name=hash"], "task m", "no such table: nope")
    no_db = _suite(tmp_path / "n.jsonl", {**count, "check": {"sql_answer": "SELECT 1"}})
    argv = ["eval", "--env", "toy", "--suite", no_db]
    _refused(tmp_path, argv, ["embed.name=hash"], "n.jsonl: task ok", "needs a database")


def test_a_fixture_that_makes_the_table_lets_its_check_compile(tmp_path: Path) -> None:
    """The check is prepared on an in-memory copy after the task's fixture; the file is untouched."""
    from lbi.config import load_config
    from lbi.envs.base import make_env
    from lbi.envs.suite_file import Suite

    (tmp_path / "fix.sql").write_text(
        "CREATE TABLE books (title TEXT); INSERT INTO books VALUES ('Emma');"
    )
    row = {
        "instruction": "Count the books.",
        "setup": {"db_fixture": "fix.sql"},
        "check": {"sql_answer": "SELECT count(*) FROM books", "db": "lib.db"},
    }
    suite = Suite(_suite(tmp_path / "s.jsonl", row), "toy")
    env = make_env("toy", load_config(None, []))
    try:
        suite.validate(env)
    finally:
        env.close()
    assert not (tmp_path / "lib.db").exists()


def test_a_malformed_jsonl_line_names_the_file_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    good = json.dumps({"instruction": "Tidy.", "check": {"info": "won"}})
    path.write_text(f"{good}\n\n{good[:30]} oops\n{good}\n")  # line 2 is blank; line 3 is cut
    for argv in (["eval", "--env", CHORES, "--suite", str(path)], ["envs", "check", CHORES]):
        if argv[0] == "envs":
            argv += ["--suite", str(path)]
        line = _refused(tmp_path, argv, GYM, "s.jsonl: line 3 is not JSON")
        assert "line 1" not in line


def test_every_synthesis_start_of_the_many_database_sql_env_resets() -> None:
    """`experiment paper --env sql` (all 20 Spider databases) stopped at the pre-flight: the
    guide's chunk named no database, so tasks written from it could never start."""
    from lbi.config import Config
    from lbi.envs.base import make_env
    from lbi.envs.preflight import preflight
    from lbi.pipeline.preflight import synth_starts

    cfg = Config(env="sql", model="scripted", synth={"max_chunks": 30})
    env = make_env("sql", cfg)
    starts = synth_starts(cfg, env)
    env.close()
    assert len(env.databases) > 1 and len(starts) > len(env.databases)
    assert all(t.setup.get("db") in env.databases for t in starts), [t.setup for t in starts]
    assert preflight(lambda: make_env("sql", cfg), lambda e: synth_starts(cfg, e)) >= len(
        env.databases
    )
