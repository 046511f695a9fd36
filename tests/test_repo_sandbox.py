"""Escape attempts against the repo environment's bubblewrap sandbox: each must find it holding."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo.sandbox import Limits, Sandbox
from lbi.types import Task

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
def env(tmp_path: Path):
    cfg = Config(run_root=str(tmp_path / "runs"), env_options={"repo": {"timeout_s": 3}})
    e = make_env("repo", cfg)
    e.reset(Task(env="repo", instruction="explore", setup={}))
    yield e
    e.close()


def run(env, cmd: str) -> tuple[str, dict]:
    obs, _, _, _, info = env.step(cmd)
    return obs, info


def test_no_connect_to_host_loopback(env) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    accepted: list[socket.socket] = []
    srv.settimeout(3)

    def accept() -> None:
        with contextlib.suppress(OSError):  # the timeout: nobody connected, as it should be
            accepted.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        obs, info = run(env, f"echo hi > /dev/tcp/127.0.0.1/{port} && echo CONNECTED")
        assert "CONNECTED" not in obs and info["exit_code"] != 0
        obs, _ = run(
            env,
            f"python -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"",
        )
        assert "refused" in obs.lower() or "unreachable" in obs.lower()
        t.join(timeout=4)
        assert not accepted
    finally:
        srv.close()


def test_run_folder_and_home_invisible(env, tmp_path: Path) -> None:
    planted = tmp_path / "runs" / "secret.txt"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("RUN-SECRET")
    home = Path(os.path.expanduser("~")) / f".lbi-test-secret-{os.getpid()}"
    home.write_text("HOME-SECRET")
    try:
        obs, _ = run(env, f"cat {planted} {home}; ls {Path.home()}; ls {planted.parent}")
        assert "RUN-SECRET" not in obs and "HOME-SECRET" not in obs
        assert "No such file" in obs
    finally:
        home.unlink()


def test_no_write_outside_workspace(env, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    obs, _ = run(env, f"echo x > {target}; echo y > /usr/escaped; echo z > /etc/escaped; pwd")
    assert not target.exists() and not Path("/usr/escaped").exists()
    assert not Path("/etc/escaped").exists()
    assert "/repo" in obs
    obs, info = run(env, "echo ok > /tmp/t && cat /tmp/t && echo w > inside.txt && cat inside.txt")
    assert info["exit_code"] == 0 and "ok" in obs and "w" in obs


def test_host_environment_variables_invisible(env, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-on-the-host")
    obs, _ = run(env, "echo key=$OPENAI_API_KEY; env")
    assert "sk-planted" not in obs and "key=\n" in obs + "\n"


def test_fork_bomb_is_bounded_and_episode_goes_on(env) -> None:
    start = time.monotonic()
    obs, info = run(env, "bomb() { bomb | bomb & }; bomb; sleep 1; echo done")
    assert time.monotonic() - start < 15
    obs, info = run(env, "echo still-alive")
    assert info["exit_code"] == 0 and "still-alive" in obs


def test_one_gigabyte_of_output_is_cut_with_flat_memory(env) -> None:
    tracemalloc.start()
    obs, _info = run(env, "head -c 1000000000 /dev/zero | tr '\\0' 'a'")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 << 20  # the 1 GB never sits in memory
    assert "bytes cut" in obs and len(obs) < 20_000
    assert "output limit" in obs


def test_sleep_is_killed_at_the_timeout(env) -> None:
    start = time.monotonic()
    obs, info = run(env, "sleep 10000")
    assert time.monotonic() - start < 10
    assert info["timed_out"] and "time limit" in obs


def _sandbox_sleepers(tag: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if tag in ln and "ps -eo" not in ln]


def test_nohup_background_process_is_gone(env) -> None:
    tag = "7777.5"
    obs, _info = run(env, f"nohup sleep {tag} > /dev/null 2>&1 & echo started")
    assert "started" in obs
    time.sleep(0.3)
    assert not _sandbox_sleepers(tag)  # the command's PID namespace ended with it
    env.close()
    assert not _sandbox_sleepers(tag)


def test_rlimits_inside(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    if os.geteuid() == 0:
        os.chown(ws, 65534, 65534)
    lim = Limits(timeout_s=10, memory_mb=512, nproc=32, fsize_mb=1)
    res = Sandbox(ws, limits=lim).run("ulimit -u; ulimit -v; head -c 3000000 /dev/zero > big")
    lines = res.stdout.split()
    assert lines[:2] == ["32", str(512 * 1024)]
    assert res.exit_code != 0 and (ws / "big").stat().st_size <= 1 << 20
    raised = Sandbox(ws, limits=lim).run("ulimit -v unlimited && echo RAISED; ulimit -u 99999")
    assert "RAISED" not in raised.stdout and raised.exit_code != 0
