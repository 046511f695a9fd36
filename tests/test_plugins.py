"""Environments from outside lbi: an installed plug-in (entry point), a `module:attr` factory on
the path, and any Gymnasium text environment by id with a docs file — no edit to lbi itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app

PLUGINS = Path(__file__).parent / "plugins"
CLI_MODULES = [
    "app",
    "config_cmd",
    "envs",
    "evaluate",
    "experiment",
    "models",
    "pipeline",
    "repo",
    "runs",
    "train",
    "view",
]
runner = CliRunner()


def _lbi(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lbi", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _synth_args(tmp_path: Path, env: str, *sets: str) -> list[str]:
    args = ["synth", "--env", env, "--model", "scripted", "--run", "p"]
    for s in (f"run_root={tmp_path / 'runs'}", "embed.name=hash", "synth.max_tasks=2", *sets):
        args += ["--set", s]
    return args


@pytest.mark.parametrize("module", CLI_MODULES)
def test_each_cli_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    r = subprocess.run(
        [sys.executable, "-c", f"import lbi.cli.{module}"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_an_installed_plugin_is_listed_checked_and_synthesized_on(tmp_path: Path) -> None:
    # Build and install the package the way a user would (into a target folder, not the venv).
    src = tmp_path / "src"
    shutil.copytree(PLUGINS / "counter_pkg", src)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-index", "--disable-pip-version-check", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
    )
    assert (site / "lbi_counter").is_dir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    listed = _lbi(["envs", "list"], env)
    assert listed.returncode == 0 and "counter" in listed.stdout, listed.stderr
    assert "plug-in lbi_counter:make_env" in listed.stdout

    checked = _lbi(["envs", "check", "counter"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "counter: passed" in checked.stdout and "reference solutions score" in checked.stdout

    synth = _lbi(_synth_args(tmp_path, "counter"), env)
    assert synth.returncode == 0, synth.stdout + synth.stderr
    stats = _lbi(["stats", "p", "--set", f"run_root={tmp_path / 'runs'}"], env)
    row = next(line for line in stats.stdout.splitlines() if line.strip().startswith("│ 1 "))
    docs, tasks, trajectories, *_ = (int(x) for x in row.strip("│ ").split("│"))
    assert (docs, tasks) == (1, 2) and trajectories == 2


def test_a_module_attr_factory_on_the_path_needs_no_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    checked = runner.invoke(app, ["envs", "check", "counter_mod:make_env"])
    assert checked.exit_code == 0 and "make_env: passed" in checked.output, checked.output
    synth = runner.invoke(app, _synth_args(tmp_path, "counter_mod:make_env"))
    assert synth.exit_code == 0, synth.output
    missing = runner.invoke(app, ["envs", "check", "counter_mod:nope"])
    assert missing.exit_code == 2 and "has no callable 'nope'" in missing.output


def test_a_gymnasium_text_env_is_synthesized_on_from_its_id_and_a_docs_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    spec = "gym:textgame:LbiGuess-v0"
    docs = f"env_options.gym.docs={PLUGINS / 'docs_guess' / 'guess.md'}"
    checked = runner.invoke(app, ["envs", "check", spec, "--set", docs])
    assert checked.exit_code == 0 and f"{spec}: passed" in checked.output, checked.output

    synth = runner.invoke(app, _synth_args(tmp_path, spec, docs))
    assert synth.exit_code == 0, synth.output
    from lbi.config import load_config
    from lbi.run import RunContext
    from lbi.types import Doc, Task, Trajectory

    ctx = RunContext("p", load_config(None, [f"run_root={tmp_path / 'runs'}"]), create=False)
    assert [d.env for d in ctx.store.all(Doc)] == [spec]
    assert len(ctx.store.all(Task)) >= 2 and len(ctx.store.all(Trajectory)) == 2  # max_tasks=2
    ctx.store.close()

    no_docs = runner.invoke(app, ["envs", "check", spec])
    assert no_docs.exit_code == 2 and "env_options.gym.docs" in no_docs.output


def test_a_gymnasium_env_says_whether_its_seeds_vary_its_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lbi.config import load_config
    from lbi.envs.base import make_env, seeds_vary

    monkeypatch.syspath_prepend(str(PLUGINS))
    docs = f"env_options.gym.docs={PLUGINS / 'docs_guess' / 'guess.md'}"
    spec = "gym:textgame:LbiGuess-v0"
    for sets, varies in (([], False), (["env_options.gym.seeds_vary=true"], True)):
        env = make_env(spec, load_config(None, [docs, f"env={spec}", *sets]))
        try:
            assert seeds_vary(env) is varies
        finally:
            env.close()
