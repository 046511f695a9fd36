"""docs/environments/custom.md: every `$ lbi ...` command on the page runs, in order."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import load_config
from lbi.run import RunContext
from lbi.types import EvalResult, Trajectory

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "environments" / "custom.md"


def test_the_worked_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    lines = re.findall(r"^\$ (.+)$", DOC.read_text(), flags=re.M)
    assert lines[0] == "export PYTHONPATH=tests/plugins"
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    commands = [shlex.split(line) for line in lines[1:]]
    assert [c[:2] for c in commands] == [["lbi", "envs"], ["lbi", "synth"], ["lbi", "eval"]]
    runner = CliRunner()
    for argv in commands:
        done = runner.invoke(app, [*argv[1:], "--set", f"run_root={tmp_path}"])
        assert done.exit_code == 0, f"{shlex.join(argv)}\n{done.output}"
    ctx = RunContext("guess", load_config(None, [f"run_root={tmp_path}"]), create=False)
    results = ctx.store.all(EvalResult)
    trajectories = ctx.store.all(Trajectory)
    ctx.store.close()
    assert {r.task_name for r in results if r.variant == "none" and r.success} == {
        "dog-by-info",
        "owl-by-score",
        "bee-by-return",
        "cat-by-python",
    }
    assert any(t.variant == "none" and t.stop_reason for t in trajectories)
    assert (tmp_path / "guess" / "report" / "report.html").is_file()
