"""OpenEnv environments in (issue 32, item 2): `--env openenv:URL` against real OpenEnv servers
(openenv-core 0.3.0, in its own virtualenv `.venv-openenv` that `make test` makes, since it would
move lbi's dependencies), started on 127.0.0.1 from tests/openenv_server.py: a counter to bring to
the task's target. One server takes text actions, the other a typed action (JSON)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import require
from lbi.cli import app
from lbi.config import Config
from lbi.envs.base import EnvError, make_env
from lbi.run import RunContext
from lbi.types import EvalResult, Task, Trajectory

ROOT = Path(__file__).resolve().parents[1]
# The server's interpreter: `.venv-openenv` beside `.venv` (LBI_OPENENV_PYTHON elsewhere).
PYTHON = Path(os.environ.get("LBI_OPENENV_PYTHON") or ROOT / ".venv-openenv" / "bin" / "python")
runner = CliRunner()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(*flags: str) -> Iterator[str]:
    require(PYTHON.exists(), "the OpenEnv server's virtualenv (.venv-openenv, `make install-test`)")
    port = _port()
    proc = subprocess.Popen(
        [str(PYTHON), str(ROOT / "tests" / "openenv_server.py"), str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # gradio's import alone takes seconds on a busy core
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                _, err = proc.communicate(timeout=5) if proc.poll() is not None else ("", "")
                pytest.fail(f"the OpenEnv server did not start: {err[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def text_server() -> Iterator[str]:
    yield from _serve()


@pytest.fixture(scope="module")
def typed_server() -> Iterator[str]:
    yield from _serve("--structured")


def _suite(path: Path, actions: dict[int, list[str]], wrong: list[str]) -> Path:
    """Tasks from 2 to 4, each with its gold actions, and one to 5 whose reference is wrong."""
    lines = [
        {
            "name": f"reach-{t}",
            "instruction": f"Bring the counter to {t}, then submit.",
            "setup": {"target": t},
            "reference": steps,
            "check": {"reward": 1.0},
        }
        for t, steps in actions.items()
    ]
    lines.append(
        {
            "name": "reach-5-wrong",
            "instruction": "Bring the counter to 5, then submit.",
            "setup": {"target": 5},
            "reference": wrong,
            "check": {"reward": 1.0},
        }
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _run(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.output


def _sets(root: Path) -> list[str]:
    out = []
    for s in (f"run_root={root}", "embed.name=hash", "synth.max_chunks=2", "synth.max_steps=4"):
        out += ["--set", s]
    return out


def test_check_synth_and_eval_against_a_text_action_server(
    text_server: str, tmp_path: Path
) -> None:
    env = f"openenv:{text_server}"
    assert "passed" in _run(["envs", "check", env])
    base = ["--env", env, "--model", "scripted", "--run", "r", *_sets(tmp_path)]
    said = _run(["synth", *base])
    assert "trajectories" in said
    suite = _suite(
        tmp_path / "counter.jsonl",
        {2: ["add 2", "submit"], 3: ["add 2", "add 1", "submit"], 4: ["add 5", "sub 1", "submit"]},
        wrong=["add 4", "submit"],
    )
    _run(["eval", *base, "--suite", str(suite), "--variants", "none"])
    ctx = RunContext("r", Config(run_root=str(tmp_path)), create=False)
    try:
        results = [r for r in ctx.store.all(EvalResult) if r.variant == "none"]
        trajectories = ctx.store.all(Trajectory)
    finally:
        ctx.store.close()
    # the three gold action sequences score 1, the wrong one 0
    assert sorted(r.success for r in results) == [False, True, True, True], results
    # synthesis ran real episodes on the server: the docs came from its /metadata
    assert any(t.steps and "counter is at" in t.steps[0].observation for t in trajectories)


def test_a_typed_action_is_written_as_json_and_a_bad_one_is_an_error_observation(
    typed_server: str, tmp_path: Path
) -> None:
    env = make_env(f"openenv:{typed_server}", Config(run_root=str(tmp_path)))
    try:
        space = env.action_space()
        assert "JSON object" in space.description and '"op"' in space.description
        task = Task(env=env.name, instruction="reach 2", setup={"target": 2})
        obs, _ = env.reset(task, seed=0)
        assert "Reach 2" in obs
        bad = env.step("add 2")  # not JSON
        assert bad[4].get("error") and bad[0].startswith("Error:") and not bad[2]
        invalid = env.step('{"op": "jump", "n": 1}')  # the server's own validation refuses it
        assert invalid[4].get("error") and not invalid[2]
        assert "counter is at 2" in env.step('{"op": "add", "n": 2}')[0]
        obs, reward, done, _, _ = env.step('{"op": "submit"}')
        assert (reward, done) == (1.0, True), obs
    finally:
        env.close()


def test_a_server_that_is_not_there_or_not_openenv_is_one_line(tmp_path: Path) -> None:
    cfg = Config(run_root=str(tmp_path))
    with pytest.raises(EnvError, match=r"no OpenEnv server answers at http://127\.0\.0\.1:"):
        make_env(f"openenv:http://127.0.0.1:{_port()}", cfg)
    with pytest.raises(EnvError, match=r"needs the server's http"):
        make_env("openenv:file:///etc/passwd", cfg)
