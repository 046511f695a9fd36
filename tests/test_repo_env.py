"""The repo environment: bug instances score gold 1.0 / empty 0.0 / test-only edit 0.0, synth e2e."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo import suite
from lbi.envs.repo.workspace import apply_patch
from lbi.types import Task

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def _score(env, task: Task, actions: list[str]) -> float:
    env.reset(task, seed=0)
    for a in actions:
        obs, _, _, _, info = env.step(a)
        assert not info.get("error"), obs
    return env.step("submit")[1]


def _test_only_edit(task: Task) -> str:
    """Replace the first failing test file with one whose tests all pass trivially."""
    path = task.gold["fail_to_pass"][0].split("::")[0]
    return json.dumps({"create": path, "content": "def test_nothing():\n    assert True\n"})


def _gold_as_shell(task: Task) -> str:
    """The gold patch applied with `git apply` inside the sandbox (not the reference edit)."""
    return "git apply - <<'EOF'\n" + task.gold["patch"] + "EOF"


def _suite_tasks(name: str) -> list[Task]:
    path = suite.SHIPPED if name == suite.SUITE else suite.DEMO_BUGS
    return [suite.to_task(r) for r in suite.read_instances(path)]


@pytest.mark.parametrize("suite_name", ["demo", pytest.param(suite.SUITE, marks=pytest.mark.slow)])
def test_every_instance_gold_one_empty_zero_test_edit_zero(suite_name: str, tmp_path: Path) -> None:
    """Every instance with LBI_REPO_BUGS_FULL=1 (minutes); by default the first per project."""
    tasks = _suite_tasks(suite_name)
    if suite_name == suite.SUITE:
        assert len(tasks) >= 30
        assert len({t.setup["project"] for t in tasks}) >= 3
    if not os.environ.get("LBI_REPO_BUGS_FULL"):
        firsts: dict[str, Task] = {}
        for t in tasks:
            firsts.setdefault(t.setup["project"], t)
        tasks = list(firsts.values())
    env = make_env("repo", Config(run_root=str(tmp_path)))
    try:
        for t in tasks:
            assert _score(env, t, [_gold_as_shell(t)]) == 1.0, t.name
            assert _score(env, t, []) == 0.0, t.name
            assert _score(env, t, [_test_only_edit(t)]) == 0.0, t.name
    finally:
        env.close()


def test_gold_patch_reverses_setup_patch(tmp_path: Path) -> None:
    t = _suite_tasks("demo")[0]
    from lbi.envs.repo.projects import DEMO

    shutil.copytree(DEMO, tmp_path / "r")
    before = (tmp_path / "r" / t.gold["patch"].split("\n")[0][6:]).read_text()
    apply_patch(tmp_path / "r", t.setup["patch"])
    apply_patch(tmp_path / "r", t.gold["patch"])
    assert (tmp_path / "r" / t.gold["patch"].split("\n")[0][6:]).read_text() == before


def test_generator_is_deterministic(tmp_path: Path) -> None:
    from lbi.envs.repo import bugs

    out = tmp_path / "b.jsonl"
    argv = ["--project", "wordstats", "--count", "2", "--tries", "8", "--run-root", str(tmp_path)]
    assert bugs.main([*argv, "--out", str(out)]) == 0
    shipped = suite.read_instances(suite.DEMO_BUGS)[:2]
    assert suite.read_instances(out) == shipped


def test_user_repo_and_synth_scripted_end_to_end(tmp_path: Path) -> None:
    repo = tmp_path / "myrepo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text('def add(a, b):\n    """Sum."""\n    return a + b\n')
    (repo / "test_pkg.py").write_text(
        "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    (repo / "README.md").write_text("# myrepo\n\nAdds numbers with `pkg.add`.\n")
    args = ["--env", "repo", "--model", "scripted", "--run", "r", "--set", f"run_root={tmp_path}"]
    args += ["--set", f"env_options.repo.path={repo}", "--set", "embed.name=hash"]
    args += ["--set", "env_options.repo.test_cmd=python -m pytest -q"]
    r = CliRunner().invoke(app, ["synth", *args])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["stats", "r", "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 0 and "trajectories" in r.output.lower(), r.output
    env = make_env(
        "repo", Config(run_root=str(tmp_path), env_options={"repo": {"path": str(repo)}})
    )
    try:
        docs = env.docs()
        assert any("def add(a, b)" in d.text for d in docs)
        assert any("Adds numbers" in d.text for d in docs)
    finally:
        env.close()
