"""docs/environments/custom.md: every `$ lbi ...` command on the page runs, in order."""

from __future__ import annotations

import json
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
SECTION_6 = "## 6. Tasks the environment already knows"


def _sections() -> tuple[str, str]:
    """Sections 1-5 (the text game) and section 6 (the game that knows its tasks)."""
    head, rest = DOC.read_text().split(SECTION_6)
    return head, rest.split("\n## ")[0]


def test_the_worked_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    lines = re.findall(r"^\$ (.+)$", _sections()[0], flags=re.M)
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


def test_a_suite_from_the_environment_spans_its_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 6: `suite init` writes the file shown; `envs check` prints the lines shown (the
    differing lines of two resets) and fails; eval with default settings scores every 10-step
    reference 1.0 under the step limit it states."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    text = _sections()[1]
    suite = str(tmp_path / "chores.jsonl")
    commands = [
        [suite if a == "chores.jsonl" else a for a in shlex.split(line)]
        for line in re.findall(r"^\$ (.+)$", text, flags=re.M)
    ]
    assert [c[:3] for c in commands] == [
        ["lbi", "suite", "init"],
        ["lbi", "envs", "check"],
        ["lbi", "eval", "-c"],
    ]
    root = ["--set", f"run_root={tmp_path / 'runs'}"]
    runner = CliRunner()
    done = runner.invoke(app, commands[0][1:])
    assert done.exit_code == 0, done.output
    shown = re.search(r"```json\n(.*?)```", text, flags=re.S)
    assert shown and Path(suite).read_text() == shown.group(1)
    assert shown.group(1) == (ROOT / "tests" / "plugins" / "chores_suite.jsonl").read_text()
    tasks = {
        json.loads(line)["setup"]["make_kwargs"]["task"]
        for line in shown.group(1).split("\n")
        if line
    }
    assert tasks == {"tidy", "wash"}

    done = runner.invoke(app, commands[1][1:])
    assert done.exit_code == 1, done.output
    output = re.search(r"```text\n(.*?)```", text, flags=re.S)
    assert output
    for line in output.group(1).splitlines():
        assert line in done.output, f"{line!r} not in\n{done.output}"
    assert "close frees resources" in done.output  # run although a check failed

    done = runner.invoke(app, [*commands[2][1:], *root])
    assert done.exit_code == 0, done.output
    assert "step limit 14 (the longest reference, 10 steps, + 4)" in done.output
    ctx = RunContext("chores", load_config(None, [f"run_root={tmp_path / 'runs'}"]), create=False)
    results = ctx.store.all(EvalResult)
    trajectories = {t.id: t for t in ctx.store.all(Trajectory)}
    ctx.store.close()
    assert len(results) == 4 and all(r.success and r.reward == 1.0 for r in results)
    assert all(len(trajectories[r.trajectory_id].steps) == 10 > 8 for r in results)
