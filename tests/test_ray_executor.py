"""The Ray executor on a real two-node cluster (head + a second node, separate processes) in a
loopback-only network namespace: same records and exports as the local executor, the same
budget stop, and the faults of docs/scale-out.md (a node's workers killed, a hung env actor)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.ray_cluster import PORT, LoopbackCluster, available

from lbi.store import RunStore
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


def test_synth_and_eval_match_local(cluster: LoopbackCluster, tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    evaluate = ["eval", "--env", "toy", "--model", "scripted", "--run", "r", "--variants", "none"]
    for root, run in ((local, _local), (remote, None)):
        extra = RAY if run is None else []
        for argv in (
            _synth(root, *extra),
            [*LBI, *evaluate, "--set", f"run_root={root}", "--set", "embed.name=hash", *extra],
        ):
            r = _local(argv, cluster.env) if run else cluster.run(argv)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert _export(cluster, remote) == _export(cluster, local)
    got, want = _records(remote), _records(local)
    assert all(want.values()), {k: len(v) for k, v in want.items()}
    assert got == want


def test_budget_stop_matches_local(cluster: LoopbackCluster, tmp_path: Path) -> None:
    cap = ["--set", "budget.max_tokens=5000", "--set", "door.concurrency=1"]
    r = _local(_synth(tmp_path / "local", *cap), cluster.env)
    assert r.returncode == 3 and "budget" in r.stdout + r.stderr, r.stderr[-2000:]
    r = cluster.run(_synth(tmp_path / "ray", *cap, *RAY))
    assert r.returncode == 3 and "budget" in r.stdout + r.stderr, r.stderr[-2000:]
    assert _spend(tmp_path / "ray") == _spend(tmp_path / "local")
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    assert not cluster.node2_actors(), "the budget stop left environment actors running"
