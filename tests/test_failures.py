"""A failed model call or a crashed environment fails one unit of work, not the run: the unit is
stored as a `Failure` with its kind and the server's words, the run goes on and says so, the
command exits 4 only past `run.max_failures`, and the next run retries exactly those units."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.run import RunContext
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.types import EvalResult, Example, Failure, Task, Trajectory, Verdict

runner = CliRunner()
KEY_ENV = "LBI_TEST_FAILURES_KEY"
ACTIONS = ["list", "set a 1", "get a", "submit"]
# A fifth of distinct requests fail every time they are sent, after the door's retries (a 500
# each time). (An overflow is not a failure: the request is sent again smaller, test_context.)
STICKY = {"500": 0.2}


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(react_actions=ACTIONS, match_ids=True, array_items=3) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _args(root: Path, srv: FakeOpenAIServer) -> list[str]:
    sets = {
        "run_root": root,
        "models.openai.base_url": srv.base_url,
        "models.openai.api_key_env": KEY_ENV,
        "embed.name": "hash",
        "door.max_retries": 1,
        "door.backoff_base_s": 0.001,
        "door.backoff_max_s": 0.01,
        "run.max_failures": 100,  # a count: these runs go on whatever fails
        # One call at a time: examples are stored, then packed into judge batches, in one
        # order, so which batch prompts fail is the same on every machine.
        "door.concurrency": 1,
    }
    out = ["--env", "toy", "--model", "openai:fake", "--run", "r"]
    for key, value in sets.items():
        out += ["--set", f"{key}={value}"]
    return out


def _invoke(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.output


def _records(root: Path) -> dict[str, list[Any]]:
    """Every record of the run, as sorted comparable JSON. Verdict reasons and eval wall times
    are left out: a judge batch's wording depends on which examples share its prompt (the fake
    model writes them from the whole prompt), and time is time."""
    ctx = RunContext("r", Config(run_root=str(root)), create=False)
    try:
        records = {
            "tasks": [t.model_dump() for t in ctx.store.all(Task)],
            "trajectories": [t.model_dump() for t in ctx.store.all(Trajectory)],
            "examples": [e.model_dump() for e in ctx.store.all(Example)],
            "verdicts": [v.model_dump(exclude={"reasons"}) for v in ctx.store.all(Verdict)],
            "results": [r.model_dump(exclude={"latency_s"}) for r in ctx.store.all(EvalResult)],
            "failures": [f.model_dump() for f in ctx.store.all(Failure)],
        }
    finally:
        ctx.store.close()
    return {k: sorted(v, key=lambda r: json.dumps(r, sort_keys=True)) for k, v in records.items()}


def _start(output: str, label: str) -> tuple[int, int]:
    """(done, total) of a stage's first progress line: what an earlier run had finished."""
    found = re.search(rf"^{re.escape(label)}: (\d+)/(\d+)", output, re.MULTILINE)
    assert found, f"no progress line for {label!r} in:\n{output}"
    return int(found.group(1)), int(found.group(2))


def _synth_ids(records: dict[str, list[Any]]) -> tuple[set[str], set[str]]:
    """Ids of the synthesized tasks and of their trajectories (not the benchmark's)."""
    tasks = {t["id"] for t in records["tasks"] if t["origin"] != "benchmark"}
    return tasks, {t["id"] for t in records["trajectories"] if t["task_id"] in tasks}


def test_a_fifth_of_calls_failing_leaves_failures_that_the_rerun_retries(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    synth, evaluate = ["synth"], ["eval", "--variants", "none"]
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for command in (synth, evaluate):
        _invoke([*command, *_args(clean, srv)])
    reference = _records(clean)
    # 12 synthesized tasks' episodes; 5 benchmark tasks with the agent and with 2 floors each.
    assert reference["failures"] == [] and len(reference["trajectories"]) == 12 + 5 + 10

    srv.sticky = dict(STICKY)
    said = _invoke([*synth, *_args(faulty, srv)]) + _invoke([*evaluate, *_args(faulty, srv)])
    first = _records(faulty)
    failed: dict[str, list[dict[str, Any]]] = {}
    for f in first["failures"]:
        failed.setdefault(f["stage"], []).append(f)
    # Both commands completed (exit 0) with failures in every stage that calls a model, each
    # with its kind and the server's own words; the output lists them.
    assert set(failed) == {"tasks", "rollout", "backward", "filter", "eval"}
    by_kind = {f["error"]: f["message"] for f in first["failures"]}
    assert set(by_kind) == {"retries exhausted"}
    assert "gave up after 2 attempts: server error (500)" in by_kind["retries exhausted"]
    assert re.search(r"^rollout: \d+ of \d+ episodes failed", said, re.MULTILINE)
    n = len(failed["rollout"])  # the stage's last progress line counts them too
    assert re.search(rf"^rollouts: (\d+)/\1 \(100%\) · {n} failed · ", said, re.MULTILINE)
    assert "× retries exhausted: " in said and "rerun the same command to retry them" in said
    assert len(first["results"]) + len(failed["eval"]) == 15  # no result for a failed episode
    stats = _invoke(["stats", "r", "--set", f"run_root={faulty}"])
    assert f"{len(first['failures'])} failed units" in stats and "retries exhausted" in stats
    report = (faulty / "r" / "report" / "report.md").read_text()
    assert "Failed episodes" in report and "retries exhausted" in report

    # The endpoint recovers: the same commands retry exactly the failed units (and do the
    # work that depends on them), and end with the clean run's records.
    srv.sticky = {}
    said = _invoke([*synth, *_args(faulty, srv)])
    final = _records(faulty)
    tasks_before, trajs_before = _synth_ids(first)
    tasks_after, trajs_after = _synth_ids(final)
    done, total = _start(said, "tasks from docs")
    assert total - done == len(failed["tasks"])
    done, total = _start(said, "rollouts")
    assert total - done == len(failed["rollout"]) + len(tasks_after - tasks_before)
    done, total = _start(said, "backward (batched)")
    assert total - done == len(failed["backward"]) + len(trajs_after - trajs_before)
    _, judged = _start(said, "judging (1 judge)")
    assert judged == len(final["verdicts"]) - len(first["verdicts"]) >= len(failed["filter"])
    said = _invoke([*evaluate, *_args(faulty, srv)])
    done, total = _start(said, "eval toy-5")
    assert total - done == len(failed["eval"])
    assert _records(faulty) == reference


def test_past_max_failures_the_stage_stops_and_the_command_exits_4(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    srv.sticky = {"overflow": 1.0}  # every call is refused as longer than the context
    args = [*_args(tmp_path, srv), "--set", "run.max_failures=0.1"]  # the default
    r = runner.invoke(app, ["eval", "--variants", "none", *args])
    assert r.exit_code == 4, r.output
    # 10% of 15 episodes is 1.5: the second failure is past it, and the stage stops there.
    assert "stopped: eval: 2 of 15 episodes failed" in r.output
    assert "2 × context overflow: " in r.output and "run.max_failures=0.1 allows (1)" in r.output
    records = _records(tmp_path)
    assert [f["stage"] for f in records["failures"]] == ["eval", "eval"]
    # each failed episode sent its prompt twice (the second time smaller), nothing more after
    assert records["results"] == [] and srv.requests == 4


def test_an_environment_that_raises_fails_the_episode_and_a_rerun_retries_it(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    broken = tmp_path / "env-is-broken"
    broken.touch()
    env = f"lbi.testing.busy_env:make:crash=copy,crash_file={broken}"
    args = [*_args(tmp_path, srv), "--env", env, "--suite", "toy-5"]
    said = _invoke(["eval", "--variants", "none", *args])
    failures = _records(tmp_path)["failures"]
    # The task's episodes under the agent and the two floor policies; the other 12 finished.
    assert sorted(f["label"].split(" task ")[0] for f in failures) == [
        "floor:constant",
        "floor:empty",
        "none",
    ]
    for f in failures:
        assert f["error"] == "env error" and f["stage"] == "eval" and "task copy" in f["label"]
        assert "step: ConnectionResetError: the environment's connection was reset" in f["message"]
    assert "3 × env error: step: ConnectionResetError" in said
    broken.unlink()  # the environment recovers
    said = _invoke(["eval", "--variants", "none", *args])
    assert _start(said, "eval toy-5") == (12, 15)  # only the failed episodes ran again
    after = _records(tmp_path)
    assert after["failures"] == [] and len(after["results"]) == 15


def test_an_endpoint_that_refuses_every_call_stops_the_run_at_once(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    srv.sticky = {"quota": 1.0}
    r = runner.invoke(app, ["tasks", *_args(tmp_path, srv)])
    assert r.exit_code == 2, r.output
    assert "quota is used up (429): You exceeded your current quota" in r.output
    # One call, not retried, and no unit is blamed for it: nothing is stored as a failure.
    assert srv.requests == 1 and _records(tmp_path)["failures"] == []
