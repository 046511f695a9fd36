"""The repo environment: bug instances score gold 1.0 / empty 0.0 / test-only edit 0.0, synth e2e."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo import suite
from lbi.envs.repo.workspace import apply_patch, digest
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


def _in_threads(tasks: list[Task], work, root: Path, workers: int = 2) -> list:
    """`work(env, task)` for every task, `workers` environments side by side (one per thread)."""
    groups = [tasks[i::workers] for i in range(workers)]

    def run_group(n: int) -> list:
        env = make_env("repo", Config(run_root=str(root / f"w{n}")))
        try:
            return [work(env, t) for t in groups[n]]
        finally:
            env.close()

    with ThreadPoolExecutor(workers) as pool:
        return [r for rs in pool.map(run_group, range(workers)) for r in rs]


def test_demo_instances_gold_one_empty_zero_test_edit_zero(tmp_path: Path) -> None:
    env = make_env("repo", Config(run_root=str(tmp_path)))
    try:
        for t in _suite_tasks("demo")[:2]:
            assert _score(env, t, [_gold_as_shell(t)]) == 1.0, t.name
            assert _score(env, t, []) == 0.0, t.name
            assert _score(env, t, [_test_only_edit(t)]) == 0.0, t.name
    finally:
        env.close()


def test_every_repo_bugs_instance_gold_one_empty_zero_test_edit_zero(tmp_path: Path) -> None:
    """Every instance, with one real scoring run where the workspaces differ.

    - gold, all instances: setup patch then gold patch gives back every file of the pristine
      snapshot (digest), and the pristine repository scores 1.0 on the union of every instance's
      F2P + P2P and test files, per project (one real run per project).
    - test-only edit, scored for real: the first two instances per project (every instance with
      LBI_REPO_BUGS_FULL=1) -> 0.0, and no change was carried into the scored copy, which is then
      the untouched starting state, what an empty patch submits: empty = 0.0 from the same run.
    bench/repo_bugs.py scores gold, empty and test-only edit literally for every instance and
    records the counts in docs/environments/repo.md.
    """
    tasks = _suite_tasks(suite.SUITE)
    projects = sorted({t.setup["project"] for t in tasks})
    assert len(tasks) >= 30 and len(projects) >= 3
    assert len({t.name for t in tasks}) == len(tasks)
    env = make_env("repo", Config(run_root=str(tmp_path / "union")))
    try:
        for project in projects:
            mine = [t for t in tasks if t.setup["project"] == project]
            snap = env.sources.snapshot(project)
            pristine = digest(snap)
            work = shutil.copytree(snap, tmp_path / project, symlinks=True)
            for t in mine:
                apply_patch(work, t.setup["patch"])
                assert digest(work) != pristine, t.name
                apply_patch(work, t.gold["patch"])
                assert digest(work) == pristine, t.name
            union = {k: sorted({x for t in mine for x in t.gold[k]}) for k in _GOLD_LISTS}
            whole = Task(env="repo", instruction="-", setup={"project": project}, gold=union)
            assert _score(env, whole, []) == 1.0, project
    finally:
        env.close()

    def test_edit(env, t: Task) -> tuple[str, float, bool, list[str]]:
        env.reset(t)
        untouched = env.state_digest()
        obs, _, _, _, info = env.step(_test_only_edit(t))
        assert not info.get("error"), obs
        edited = env.state_digest()
        _, reward, _, _, info = env.step("submit")
        return t.name, reward, edited != untouched, info["scored_changes"]

    if not os.environ.get("LBI_REPO_BUGS_FULL"):
        tasks = [t for p in projects for t in [t for t in tasks if t.setup["project"] == p][:2]]
    for name, reward, changed, carried in _in_threads(tasks, test_edit, tmp_path):
        assert (reward, changed, carried) == (0.0, True, []), name


_GOLD_LISTS = ("fail_to_pass", "pass_to_pass", "test_files")


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
    args += ["--set", "synth.max_tasks=2"]
    test_cmd = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q"
    args += ["--set", f"env_options.repo.test_cmd={test_cmd}"]
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


def test_cli_repo_bugs_on_the_demo_project_builds_a_usable_suite(tmp_path: Path) -> None:
    from lbi.envs.repo.projects import DEMO

    repo = shutil.copytree(DEMO, tmp_path / "wordstats")
    test_cmd = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q"
    args = ["repo", "bugs", "--path", str(repo), "--test-cmd", test_cmd, "--count", "1"]
    args += ["--tries", "4", "--set", f"run_root={tmp_path}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    built = suite.read_instances(tmp_path / "repo-bugs" / "wordstats.jsonl")
    assert built == suite.read_instances(suite.DEMO_BUGS)[:1]  # same seed, same instance
    opts = {"path": str(repo), "test_cmd": test_cmd}
    env = make_env("repo", Config(run_root=str(tmp_path), env_options={"repo": opts}))
    try:
        (task,) = env.load_suite(suite.LOCAL)  # found where the command wrote it
        assert _score(env, task, [_gold_as_shell(task)]) == 1.0
    finally:
        env.close()
    r = CliRunner().invoke(app, ["repo", "bugs", "--path", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "is not a folder" in " ".join(r.output.split())


def test_setup_runs_once_per_commit_and_is_read_only(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "README.md").write_text("# proj\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    setup = (
        "mkdir -p /env/bin && printf '#!/bin/sh\\necho tool-from-env\\n' > /env/bin/mytool"
        " && chmod +x /env/bin/mytool && echo ran >> /env/runs.txt"
    )
    cfg = Config(
        run_root=str(tmp_path / "runs"), env_options={"repo": {"path": str(repo), "setup": setup}}
    )
    task = Task(env="repo", instruction="-", setup={})

    def episode() -> tuple[str, str]:
        env = make_env("repo", cfg)
        try:
            env.reset(task)
            used = env.step("mytool; cat /env/runs.txt")[0]
            env.reset(task)
            return used, env.step("echo x > /env/written && echo WROTE")[0]
        finally:
            env.close()

    used, wrote = episode()
    assert "tool-from-env" in used and used.count("ran") == 1
    assert "WROTE" not in wrote and "Read-only" in wrote
    used, _ = episode()  # a new environment, the same commit: the cached /env
    assert used.count("ran") == 1
    envs = tmp_path / "runs" / ".cache" / "repo" / "envs"
    assert len(list(envs.iterdir())) == 1
    (repo / "README.md").write_text("# proj, changed\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    used, _ = episode()  # a new commit: setup runs again, into a new /env
    assert used.count("ran") == 1 and len(list(envs.iterdir())) == 2


def test_concurrent_snapshots_of_one_repo_all_land_on_one_complete_copy(tmp_path: Path) -> None:
    # Two episodes of one project reset at once (eval runs episodes concurrently): both took the
    # snapshot into the same scratch name and the second failed with FileExistsError.
    from concurrent.futures import ThreadPoolExecutor

    from lbi.envs.repo.workspace import take_snapshot

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    dest = tmp_path / "snaps" / "p-1"
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: take_snapshot(src, dest), range(8)))
    assert got == [dest] * 8 and (dest / "a.py").read_text() == "x = 1\n"
    assert [p.name for p in (tmp_path / "snaps").iterdir()] == ["p-1"]  # no scratch left
