"""A run keeps the environment and model it was created with; a failed command leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app

runner = CliRunner()


def _sets(root: Path) -> list[str]:
    return ["--set", f"run_root={root}", "--set", "embed.name=hash"]


@pytest.mark.parametrize(
    ("env", "model"), [("sql:pets_1", "scripted"), ("toy", "openai:gpt-4o-mini")]
)
def test_another_env_or_model_on_a_run_is_refused(tmp_path: Path, env: str, model: str) -> None:
    root = tmp_path / "runs"
    r = runner.invoke(
        app, ["tasks", "--env", "toy", "--model", "scripted", "--run", "t", *_sets(root)]
    )
    assert r.exit_code == 0, r.output
    config_before = (root / "t" / "config.yaml").read_text()
    stats_before = runner.invoke(app, ["runs", "show", "t", *_sets(root)]).output
    for command in (["synth"], ["tasks"], ["eval", "--variants", "none"]):
        r = runner.invoke(
            app, [*command, "--env", env, "--model", model, "--run", "t", *_sets(root)]
        )
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "holds env toy and model scripted" in lines[0], r.output
        assert "--run NEW" in lines[0]
    assert (root / "t" / "config.yaml").read_text() == config_before
    assert runner.invoke(app, ["runs", "show", "t", *_sets(root)]).output == stats_before
    # the same env and model extend it as before
    r = runner.invoke(
        app, ["tasks", "--env", "toy", "--model", "scripted", "--run", "t", *_sets(root)]
    )
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "--env", "toy", "--model", "foo:bar"],
        ["synth", "--env", "nope", "--model", "scripted"],
        ["synth", "--env", "toy", "--model", "scripted", "--set", "synth.judges=[nope:x]"],
        ["eval", "--env", "toy", "--model", "foo:bar"],
        ["eval", "--env", "toy", "--model", "scripted", "--suite", "nope"],
        ["eval", "--env", "toy", "--model", "scripted", "--variants", "none,bogus"],
    ],
)
def test_a_failed_command_leaves_no_run_folder(tmp_path: Path, args: list[str]) -> None:
    root = tmp_path / "runs"
    r = runner.invoke(app, [*args, "--run", "x", *_sets(root)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert not (root / "x").exists()
    assert runner.invoke(app, ["runs", "list", *_sets(root)]).output.strip() == ""
