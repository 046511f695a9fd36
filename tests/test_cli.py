"""The command line: every command has help; known failures are one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app

runner = CliRunner()
COMMANDS = [
    "synth",
    "tasks",
    "rollout",
    "backward",
    "filter",
    "stats",
    "export",
    "episode",
    "eval",
    "report",
    "config",
    "models",
    "envs",
    "runs",
    "index",
]


def test_help_lists_every_command_with_text() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for name in COMMANDS:
        assert name in r.output
    for name in COMMANDS:
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and len(sub.output.strip().splitlines()) > 3, name


def test_config_show_applies_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("synth:\n  max_steps: 4\n")
    r = runner.invoke(app, ["config", "show", "--config", str(f), "--set", "model=scripted"])
    assert r.exit_code == 0 and "model: scripted" in r.output and "max_steps: 4" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "show", "--set", "synth.max_steps=lots"], "synth.max_steps"),
        (["config", "show", "--config", "/nonexistent/lbi.yaml"], "not found"),
        (["stats", "no-such-run"], "no run named"),
        (["synth", "--env", "nope", "--model", "scripted"], "unknown environment"),
        (["synth", "--env", "toy", "--model", "nope:x"], "unknown model"),
        (
            [
                "models",
                "probe",
                "openai:gpt-x",
                "--set",
                "models.openai.base_url=http://127.0.0.1:9/v1",
            ],
            "",
        ),
        (
            [
                "models",
                "probe",
                "openai:gpt-x",
                "--set",
                "models.openai.api_key_env=LBI_SURELY_UNSET",
            ],
            "LBI_SURELY_UNSET",
        ),
        (["export", "r", "--format", "xml"], ""),
    ],
)
def test_known_failures_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    r = runner.invoke(app, [*args, "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and message in r.output


def test_envs_list_and_check_toy() -> None:
    r = runner.invoke(app, ["envs", "list"])
    assert r.exit_code == 0 and "sql" in r.output and "toy" in r.output
    r = runner.invoke(app, ["envs", "check", "toy"])
    assert r.exit_code == 0 and "toy: passed" in r.output


def test_budget_cap_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    base = [
        "--env",
        "toy",
        "--model",
        "scripted",
        "--run",
        "b",
        "--set",
        f"run_root={tmp_path}",
        "--set",
        "embed.name=hash",
    ]
    r = runner.invoke(app, ["synth", *base, "--set", "budget.max_tokens=3000"])
    assert r.exit_code == 3 and "budget" in r.output
    r = runner.invoke(app, ["synth", *base])  # no cap: picks up where it stopped
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["stats", "b", "--set", f"run_root={tmp_path}"])
    assert "240" in r.output


def test_eval_and_report_on_toy(tmp_path: Path) -> None:
    base = [
        "--env",
        "toy",
        "--model",
        "scripted",
        "--run",
        "e",
        "--set",
        f"run_root={tmp_path}",
        "--set",
        "embed.name=hash",
    ]
    assert runner.invoke(app, ["synth", *base]).exit_code == 0
    r = runner.invoke(app, ["index", "build", "e", "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 0 and "examples: 240 records" in r.output
    r = runner.invoke(app, ["eval", *base, "--variants", "none,both", "--seeds", "2"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "e" / "report" / "report.json").read_text())
    assert "none" in json.dumps(report) and "floor:empty" in json.dumps(report)
    r = runner.invoke(app, ["report", "e", "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 0 and r.output.strip().endswith("report.html")
    r = runner.invoke(app, ["runs", "list", "--set", f"run_root={tmp_path}"])
    assert "e" in r.output.split()
