"""The Ray executor on a real two-node cluster (head + a second node, separate processes) in a
loopback-only network namespace: same records and exports as the local executor, the same
budget stop, and the faults of docs/scale-out.md (a node's workers killed, a hung env actor)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from lbi.envs.web.browser import find_marked
from lbi.store import RunStore
from lbi.testing.ray_cluster import PORT, LoopbackCluster, available
from lbi.types import EvalResult, Example, Task, Trajectory, Verdict

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(available()), reason=available())]

LBI = [sys.executable, "-m", "lbi"]
RAY = ["--set", "executor.kind=ray", "--set", f"executor.address=127.0.0.1:{PORT}"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    c = LoopbackCluster().start()
    try:
        yield c
    finally:
        c.stop()


def _synth(root: Path, *extra: str, model: str = "scripted", env: str = "toy") -> list[str]:
    return [
        *LBI,
        "synth",
        "--env",
        env,
        "--model",
        model,
        "--run",
        "r",
        "--set",
        f"run_root={root}",
        "--set",
        "embed.name=hash",
        *extra,
    ]


def _common(root: Path) -> list[str]:
    return ["--set", f"run_root={root}", "--set", "embed.name=hash"]


def _local(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)


def _export(c: LoopbackCluster, root: Path) -> str:
    out = root / "export.jsonl"
    r = _local(
        [*LBI, "export", "r", "-f", "jsonl", "-o", str(out), "--set", f"run_root={root}"], c.env
    )
    assert r.returncode == 0, r.stderr
    return out.read_text()


def _records(root: Path) -> dict[str, dict[str, str]]:
    """Every record by kind: id -> JSON (eval results without their wall-clock latency)."""
    store = RunStore(root / "r")
    try:
        out = {}
        for cls in (Task, Trajectory, Example, Verdict, EvalResult):
            out[cls.kind] = {
                r.id: r.model_dump_json(exclude={"latency_s"} if cls is EvalResult else None)
                for r in store.all(cls)
            }
        return out
    finally:
        store.close()


def _spend(root: Path) -> dict[str, object]:
    store = RunStore(root / "r")
    try:
        acc = store.get_meta("accounting", {})
    finally:
        store.close()
    # Everything but wall-clock latency: calls, hits, tokens, cost, per stage.
    return {
        name: {k: v for k, v in stats.items() if k != "latency_s"}
        for name, stats in acc.get("stages", {}).items()
    }


# `sql` on one small database with small limits keeps the second case to a few seconds.
CASES = {
    "toy": (["--env", "toy"], [], []),
    "sql": (["--env", "sql:pets_1"], ["--set", "synth.max_tasks=2"], ["--limit", "3"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_synth_and_eval_match_local(case: str, cluster: LoopbackCluster, tmp_path: Path) -> None:
    env, synth_extra, eval_extra = CASES[case]
    local, remote = tmp_path / "local", tmp_path / "ray"
    evaluate = ["eval", *env, "--model", "scripted", "--run", "r", "--variants", "none"]
    started = cluster.actors_started()
    for root, run in ((local, _local), (remote, None)):
        extra = RAY if run is None else []
        for argv in (
            _synth(root, *synth_extra, *extra, env=env[1]),
            [*LBI, *evaluate, *eval_extra, *_common(root), *extra],
        ):
            r = _local(argv, cluster.env) if run else cluster.run(argv)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert cluster.actors_started() > started, "the Ray runs started no environment actor"
    assert _export(cluster, remote) == _export(cluster, local)
    got, want = _records(remote), _records(local)
    assert all(want.values()), {k: len(v) for k, v in want.items()}
    assert got == want
    assert {t["env"] for t in map(json.loads, want["task"].values())} == {env[1].split(":")[0]}


def test_budget_stop_matches_local(cluster: LoopbackCluster, tmp_path: Path) -> None:
    cap = ["--set", "budget.max_tokens=5000", "--set", "door.concurrency=1"]
    r = _local(_synth(tmp_path / "local", *cap), cluster.env)
    assert r.returncode == 3 and "budget" in r.stdout + r.stderr, r.stderr[-2000:]
    r = cluster.run(_synth(tmp_path / "ray", *cap, *RAY))
    assert r.returncode == 3 and "budget" in r.stdout + r.stderr, r.stderr[-2000:]
    assert _spend(tmp_path / "ray") == _spend(tmp_path / "local")
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    _no_actors_left(cluster)


def _no_actors_left(cluster: LoopbackCluster) -> None:
    deadline = time.monotonic() + 20  # a finished driver's actors go with it, asynchronously
    while cluster.actors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cluster.actors(), "environment actors outlived their run"


def _trajectories(root: Path) -> int:
    db = root / "r" / "run.sqlite"
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            sql = "SELECT COUNT(*) FROM records WHERE kind='trajectory'"
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait(proc: subprocess.Popen[bytes], cond: Callable[[], bool], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.solo
def test_node_workers_killed_then_driver_killed(cluster: LoopbackCluster, tmp_path: Path) -> None:
    """Kill the second node's environment workers mid-rollout: their episodes run again
    elsewhere, and no model call is paid twice. Then SIGKILL the driver: the same command
    resumes. The dataset equals an uninterrupted local run's."""
    ref, root = tmp_path / "local", tmp_path / "ray"

    def cmd(base: Path, *extra: str) -> list[str]:
        model = f"scripted:delay=0.15,log={base}.log"
        return _synth(base, "--set", "door.concurrency=2", *extra, model=model)

    r = _local(cmd(ref), cluster.env)
    assert r.returncode == 0, r.stderr[-2000:]

    proc = cluster.popen(cmd(root, *RAY))
    assert _wait(proc, lambda: _trajectories(root) >= 3 and bool(cluster.actors(node2=True)))
    victims = cluster.actors(node2=True)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert _wait(proc, lambda: _trajectories(root) >= 8), "the run did not go on"
    calls_before_driver_kill = Path(f"{root}.log").read_text().splitlines()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = cluster.run(cmd(root, *RAY))  # the same command resumes
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]

    assert victims and _export(cluster, root) == _export(cluster, ref)
    assert _records(root) == _records(ref)
    paid = Counter(line.split()[0] for line in calls_before_driver_kill)
    assert max(paid.values()) == 1, "a model call was paid twice after the workers died"
    calls = Counter(line.split()[0] for line in Path(f"{root}.log").read_text().splitlines())
    want = Counter(line.split()[0] for line in Path(f"{ref}.log").read_text().splitlines())
    # A SIGKILL of the driver can land between an answer and its cache write: at most
    # `door.concurrency` answers in flight then may be asked again (as in a local run).
    assert set(calls) == set(want) and sum(calls.values()) - len(calls) <= 2
    _no_actors_left(cluster)


@pytest.mark.solo
def test_hung_env_actor_is_replaced_and_episode_failed(
    cluster: LoopbackCluster, tmp_path: Path
) -> None:
    ref, root = tmp_path / "local", tmp_path / "ray"
    base = ["eval", "--model", "scripted", "--run", "r", "--variants", "none"]
    r = _local([*LBI, *base, "--env", "toy", "--set", f"run_root={ref}"], cluster.env)
    assert r.returncode == 0, r.stderr[-2000:]
    hang = ["--env", "lbi.testing.busy_env:make:hang=set-a", "--set", f"run_root={root}"]
    start = time.monotonic()
    r = cluster.run([*LBI, *base, *hang, *RAY, "--set", "executor.step_timeout_s=3"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert time.monotonic() - start < 120
    got, want = _records(root), _records(ref)
    assert got["eval_result"].keys() == want["eval_result"].keys()
    store = RunStore(root / "r")
    try:
        hung = [t for t in store.all(Trajectory) if t.stop_reason.startswith("env timeout")]
        tasks = {t.id: t.name for t in store.all(Task)}
    finally:
        store.close()
    assert hung and {tasks[t.task_id] for t in hung} == {"set-a"}
    # Every other episode is the same as on the plain local run.
    others = {k: v for k, v in got["trajectory"].items() if k not in {t.id for t in hung}}
    assert others == {k: want["trajectory"][k] for k in others}
    assert len(others) + len(hung) == len(want["trajectory"])
    _no_actors_left(cluster)


# A driver inside the cluster's namespace: scripted MiniWoB episodes through the Ray executor
# (one environment actor), reporting each episode's actor and the Chromium it ran.
MINIWOB_EPISODES = """
import asyncio, json, sys
from lbi.config import Config, ExecutorConfig
from lbi.envs.base import EnvSpec
from lbi.envs.web.browser import find_marked
from lbi.envs.web.miniwob import benchmark_task
from lbi.envs.web.solutions import solve
from lbi.executor.ray_pool import RayExecutor

async def episode(name, env):
    reward, _ = await asyncio.to_thread(solve, env, benchmark_task(name), 3)
    browser = [p.pid for p in find_marked(f"{env.pid}-")]  # our marker carries the owner's pid
    return {"task": name, "reward": reward, "actor": env.pid, "browser": browser}

async def main():
    ex = RayExecutor(ExecutorConfig(kind="ray", address=sys.argv[1], workers=1))
    spec = EnvSpec("miniwob", Config())
    return [r async for _, r in ex.episodes(episode, ["click-test", "click-button"], 1, spec)]

said = json.dumps(asyncio.run(main()))
sys.stdout.write(f"LBI {said} :LBI\\n")  # one write: Ray's threads print here too
"""

# A driver that holds one miniwob actor mid-episode until the actor is killed.
MINIWOB_HELD = """
import json, sys, time
import ray
from ray.exceptions import RayActorError
from lbi.config import Config
from lbi.envs.base import EnvSpec
from lbi.envs.web.browser import find_marked
from lbi.envs.web.miniwob import benchmark_task
from lbi.executor.ray_pool import EnvActor, connect

connect(sys.argv[1])
actor = ray.remote(EnvActor).options(max_restarts=0, num_cpus=1).remote(EnvSpec("miniwob", Config()))
pid = ray.get(actor.describe.remote())["pid"]
ray.get(actor.call.remote("reset", (benchmark_task("click-test"), 0)))
held = {"actor": pid, "browser": [p.pid for p in find_marked(f"{pid}-")]}
sys.stdout.write(f"LBI {json.dumps(held)} :LBI\\n")  # one write: Ray's threads print here too
sys.stdout.flush()
try:
    while True:
        ray.get(actor.call.remote("state_digest", ()))
        time.sleep(0.2)
except RayActorError:
    sys.stdout.write("LBI lost :LBI\\n")
    sys.stdout.flush()
"""


def _said(out: IO[str]) -> str:
    """The driver's next message of its own. Ray's driver threads print worker-death notices to
    the same stdout, in several writes, so a message can land inside one of their lines: each
    message is one write between `LBI ` and ` :LBI`, and is found wherever it is in a line."""
    for line in out:
        found = re.search(r"LBI (.*?) :LBI", line)
        if found:
            return found.group(1)
    return ""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _chromium_left(browser: list[int], actors: list[int], timeout_s: float = 30) -> list[int]:
    """Wait for the browser's processes, and any process carrying our marker for these actors
    (`--lbi-owner=<actor pid>-...`), to end; the PIDs still alive otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = {p for p in browser if _alive(p)}
        left |= {p.pid for a in actors for p in find_marked(f"{a}-") if _alive(p.pid)}
        if not left or time.monotonic() > deadline:
            return sorted(left)
        time.sleep(0.25)


@pytest.mark.solo
@pytest.mark.browser
def test_miniwob_episode_in_actor_leaves_no_chromium(cluster: LoopbackCluster) -> None:
    py = [sys.executable, "-c"]
    r = cluster.run([*py, MINIWOB_EPISODES, cluster.address], timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    episodes = json.loads(_said(io.StringIO(r.stdout)))
    assert [(e["task"], e["reward"]) for e in episodes] == [
        ("click-test", 1.0),
        ("click-button", 1.0),
    ]
    actors = sorted({e["actor"] for e in episodes})
    browser = sorted({p for e in episodes for p in e["browser"]})
    # One actor, its one browser reused; neither is the driver, and both are on the cluster.
    assert len(actors) == 1 and browser and actors[0] != os.getpid()
    assert not _chromium_left(browser, actors), "Chromium outlived the stage's actor pool"
    _no_actors_left(cluster)

    # An actor SIGKILLed mid-episode: its guard takes the browser down with it.
    proc = subprocess.Popen(
        cluster.wrap([*py, MINIWOB_HELD, cluster.address]),
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        held = json.loads(_said(proc.stdout))
        assert held["browser"] and held["actor"] in cluster.actors()
        os.kill(held["actor"], signal.SIGKILL)
        assert _said(proc.stdout) == "lost"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _chromium_left(held["browser"], [held["actor"]])
    assert not left, f"Chromium outlived its killed actor: {left}"
    _no_actors_left(cluster)


def test_a_driver_message_is_found_inside_a_line_ray_printed_around_it() -> None:
    """The line a solo run got: Ray's worker-death notice written into the middle of ours."""
    notice = "\x1b[33m(raylet)\x1b[0m A worker died or was killed while executing a task."
    lines = [f"{notice}\n", f"LBI lost :LBI{notice}\n"]
    assert _said(io.StringIO("".join(lines))) == "lost"
    assert _said(io.StringIO('(raylet) A worker died LBI {"a": 1} :LBI\n')) == '{"a": 1}'
    assert _said(io.StringIO(f"{notice}\n")) == ""
