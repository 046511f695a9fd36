"""What a new user meets first: help, --version, out-of-range tasks, partial reports, --url."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lbi import __version__
from lbi.cli import app

runner = CliRunner()


def test_help_has_no_bool_metavar_and_points_at_config_show() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "lbi config show" in r.output
    for args in (["--help"], ["synth", "--help"], ["export", "--help"], ["runs", "--help"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "<bool>" not in r.output, r.output
    text = " ".join(runner.invoke(app, ["eval", "--help"]).output.split())
    assert "`lbi config show` lists every key" in text
    assert "(default: the config's `model`, local)" in text
    assert "[default: jsonl]" in runner.invoke(app, ["export", "--help"]).output


def test_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"lbi {__version__}"


def test_an_out_of_range_task_is_refused() -> None:
    args = ["episode", "--env", "toy", "--model", "scripted", "--suite", "toy-5"]
    r = runner.invoke(app, [*args, "--task", "99"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        "error: --task 99 is out of range: suite toy-5 has 5 tasks (0 to 4)"
    ]
    assert runner.invoke(app, [*args, "--task", "4"]).exit_code == 0


def test_envs_check_cuts_the_action_space_at_a_word() -> None:
    r = runner.invoke(app, ["envs", "check", "toy"], terminal_width=200)
    line = next(x for x in r.output.splitlines() if "action space described" in x)
    detail = line.split("action space described", 1)[1].strip()
    assert detail.endswith(" …") and len(detail) <= 80
    assert detail[:-2] in "One command per action: `set KEY VALUE`, `get KEY`, `delete KEY`, `list`"


def test_report_on_an_unfinished_eval_says_what_is_missing(tmp_path: Path) -> None:
    sets = ["--set", f"run_root={tmp_path}", "--set", "embed.name=hash"]
    stop = ["--set", "budget.max_tokens=1500", "--set", "door.concurrency=1"]
    args = ["eval", "--env", "toy", "--model", "scripted", "--run", "e", "--variants", "none,both"]
    r = runner.invoke(app, [*args, *sets, *stop])
    assert r.exit_code == 3, r.output  # stopped by the budget part way
    r = runner.invoke(app, ["report", "e", *sets])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("incomplete: 17 of 20 planned episodes of toy-5 have no result")
    assert "rerun the same `lbi eval ... --run e`" in lines[0]
    assert "  none: 2 missing: task 3, task 4" in lines
    assert "  both: 5 missing: task 0, task 1, task 2, task 3, task 4" in lines
    assert lines[-1].endswith("report.html")
    assert runner.invoke(app, [*args, *sets]).exit_code == 0  # finishing it
    r = runner.invoke(app, ["report", "e", *sets])
    assert "incomplete" not in r.output


def test_url_and_docs_set_the_envs_options(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Toy\nset KEY VALUE stores a value.\n")
    sets = ["--set", f"run_root={tmp_path}", "--set", "embed.name=hash"]
    source = ["--url", "http://127.0.0.1:9/", "--docs", str(docs)]
    r = runner.invoke(
        app,
        ["tasks", "--env", "toy", "--model", "scripted", "--run", "u", *sets, *source],
    )
    assert r.exit_code == 0, r.output
    stored = (tmp_path / "u" / "config.yaml").read_text()
    assert "url: http://127.0.0.1:9/" in stored and f"docs_dir: {docs}" in stored
    r = runner.invoke(app, ["envs", "check", "site", "--url", "http://127.0.0.1:9/", *sets])
    assert "Traceback" not in r.output and "--url" not in json.dumps(r.output)
