"""tau2 telecom, dual control: the simulated customer acts on their own phone (the user-side
tools, on the user database, through tau2's own environment) while the agent guides them, and
tau2's evaluator scores the conversation with both sides' tool calls in it.

The gold replay: the agent makes its gold calls and asks for each of the customer's in a message
(`Domain.reference`); the scripted customer makes the call asked of it. It must score 1.0, and
dropping the last write (the agent's or the customer's) must score 0.0.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.agents.react import EpisodeSettings, FixedPolicy, drive
from lbi.cli import app
from lbi.config import Config
from lbi.envs.tau2.domain import ToolMessage, UserMessage
from lbi.envs.tau2.env import Tau2Env
from lbi.types import Task


def play(env: Tau2Env, task: Task, actions: list[str]) -> float:
    env.reset(task, seed=0)
    reward = 0.0
    for action in actions:
        _, reward, terminated, _, _ = env.step(action)
        if terminated:
            break
    return reward


def without_last_write(env: Tau2Env, task: Task) -> list[str] | None:
    t = env.domain.tasks[task.setup["tau2_task_id"]]
    acts = env.domain.gold_actions(t)
    writes = [i for i, a in enumerate(acts) if env.domain.is_write(a.name, a.requestor)]
    if not writes:
        return None
    return env.domain.reference(t, [a for i, a in enumerate(acts) if i != writes[-1]])


def replay(suite: str, every: int, run_root: str) -> dict[str, Any]:
    env = Tau2Env("telecom", Config(run_root=run_root, model="scripted"))
    gold, drop = {}, {}
    for t in env.load_suite(suite)[::every]:
        gold[t.name] = play(env, t, t.reference)
        if (d := without_last_write(env, t)) is not None:
            drop[t.name] = play(env, t, d)
    env.close()
    return {"gold": gold, "drop": drop}


@pytest.fixture(scope="module")
def telecom(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = Tau2Env("telecom", Config(run_root=str(tmp_path_factory.mktemp("r")), model="scripted"))
    yield env
    env.close()


def test_suites_and_docs_include_the_customers_phone(telecom: Tau2Env) -> None:
    assert telecom.suites() == [
        "tau2-telecom",
        "tau2-telecom-quick",
        "tau2-telecom-test",
        "tau2-telecom-full",
    ]
    assert [len(telecom.load_suite(s)) for s in telecom.suites()] == [114, 10, 40, 2285]
    titles = {d.title for d in telecom.docs()}
    assert {"Tool refuel_data", "Customer's phone: toggle_airplane_mode"} <= titles


def test_the_customer_acts_on_their_phone_and_both_sides_are_recorded(telecom: Tau2Env) -> None:
    task = telecom.load_suite("tau2-telecom-quick")[0]
    traj = asyncio.run(
        drive(telecom, task, "replay", EpisodeSettings(max_steps=10), FixedPolicy(task.reference))
    )
    assert traj.success and traj.reward == 1.0
    agent = [s.action for s in traj.steps]
    user = [(s.index, a) for s in traj.steps for a in s.other_actions]
    assert agent == task.reference  # the agent's actions are the steps' actions
    # The customer's own call, on the step where the agent asked for it, marked as theirs.
    (index, action), *_ = user
    assert action["actor"] == "user" and "toggle_airplane_mode" in action["action"]
    assert "Airplane Mode is now OFF" in action["result"]
    assert "Airplane Mode" not in traj.steps[index].next_observation  # the agent sees words only
    # tau2's evaluator got the call as the customer's (requestor "user"), with its result.
    calls = [m for m in telecom._messages if isinstance(m, UserMessage) and m.tool_calls]
    results = [m for m in telecom._messages if isinstance(m, ToolMessage)]
    assert calls[0].tool_calls[0].requestor == "user"  # type: ignore[index]
    assert any(r.requestor == "user" for r in results)
    # The customer's own view: their call as their turn, its result as what they saw.
    view = telecom._user_messages()
    assert "<your_phone>" in view[0]["content"] and "toggle_airplane_mode" in view[0]["content"]
    mine = [i for i, m in enumerate(view) if m["role"] == "assistant" and "toggle_" in m["content"]]
    assert view[mine[0] + 1]["content"].startswith("(your phone) Airplane Mode is now OFF")


def test_quick_gold_replays_score_one_and_dropping_the_last_write_scores_zero(
    telecom: Tau2Env,
) -> None:
    tasks = telecom.load_suite("tau2-telecom-quick")
    assert [play(telecom, t, t.reference) for t in tasks] == [1.0] * 10
    dropped = [(t, d) for t in tasks if (d := without_last_write(telecom, t)) is not None]
    assert len(dropped) == 10 and [play(telecom, t, d) for t, d in dropped] == [0.0] * 10


def test_envs_check_passes_from_the_cli(tmp_path: Any) -> None:
    args = ["envs", "check", "tau2.telecom"]  # the customer: scripted unless --model says
    done = CliRunner().invoke(app, [*args, "--set", f"run_root={tmp_path}"])
    assert done.exit_code == 0 and "tau2.telecom: passed" in done.output, done.output
    assert "reference solutions score  2/2" in done.output


@pytest.mark.slow
@pytest.mark.timeout(
    1800
)  # ~0.1 CPU-s a replay, ~440 replays; all 2,285: bench/tau2_telecom_replay.py
def test_every_base_task_and_a_sample_of_all_replay_to_one(tmp_path: Any) -> None:
    # The benchmark split (114 tasks) in full; of all 2,285, every 20th (115), in two processes
    # of about the same length.
    with ProcessPoolExecutor(2) as pool:
        base, sample = pool.map(
            replay, ["tau2-telecom", "tau2-telecom-full"], [1, 20], [str(tmp_path)] * 2
        )
    # Tasks without a write (20 of the base split, 2 of the sample) only transfer to a human.
    for part, n, writes in ((base, 114, 94), (sample, 115, 113)):
        assert len(part["gold"]) == n and set(part["gold"].values()) == {1.0}
        assert len(part["drop"]) == writes and set(part["drop"].values()) == {0.0}


def test_a_customer_who_only_calls_tools_is_stopped_after_ten_calls(tmp_path: Any) -> None:
    from lbi.envs.tau2.env import MAX_USER_CALLS
    from lbi.models.scripted import ScriptedModel

    call = '{"name": "check_status_bar", "arguments": {}}'
    model = ScriptedModel(handlers={"user_sim": lambda req: call})
    env = Tau2Env("telecom", Config(run_root=str(tmp_path), model="scripted"), user_model=model)
    try:
        obs, _ = env.reset(env.load_suite("tau2-telecom-quick")[0], seed=0)
        assert obs == f"User: {call}"  # the 11th reply is what they say
        _, _, _, _, info = env.step('{"name": "respond", "arguments": {"content": "Hello?"}}')
        assert len(info["other_actions"]) == MAX_USER_CALLS == 10
        assert all(a["actor"] == "user" and not a["error"] for a in info["other_actions"])
    finally:
        env.close()


def test_the_quick_suite_scores_the_same_with_the_cache_on_and_off(tmp_path: Any) -> None:
    """Telecom tasks share their first prompt, so a cache key without the scripted policy's
    per-task reference (`meta`) gave every task another's actions: 1/3 with the cache on,
    3/3 off (issue 28)."""
    scores = {}
    for cache in ("true", "false"):
        args = ["eval", "--env", "tau2:telecom", "--suite", "tau2-telecom-quick"]
        args += ["--model", "scripted", "--limit", "3", "--variants", "none", "--run", cache]
        args += ["--set", f"run_root={tmp_path}", "--set", f"cache.enabled={cache}"]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        report = json.loads((tmp_path / cache / "report" / "report.json").read_text())
        scores[cache] = report
    assert _rewards(scores["true"]) == _rewards(scores["false"]) == [1.0, 1.0, 1.0]


def _rewards(report: dict[str, Any]) -> list[float]:
    results = [r for r in report["results"] if r["variant"] == "none"]
    return [r["reward"] for r in sorted(results, key=lambda r: r["task_name"])]
