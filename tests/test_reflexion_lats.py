"""Reflexion and LATS, the paper's inference-time baselines, with the scripted model: a failed
try is reflected on and the reflection decides the next try; LATS restores states by reset +
replay, checked by digest, and keeps to its budgets; an environment that cannot replay is
refused in one line; both run from `lbi eval` on toy and sql and reach the report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.agents.lats import run_lats
from lbi.agents.react import EpisodeSettings
from lbi.agents.reflexion import run_reflexion
from lbi.agents.replay import CannotReplay
from lbi.cli import app
from lbi.config import Config, LatsConfig, ReflexionConfig
from lbi.envs.toy import ToyEnv
from lbi.eval.metered import MeteredDoor
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest
from lbi.models.door import ModelDoor
from lbi.models.scripted import ScriptedModel, _act
from lbi.types import Task, Trajectory

WRONG = ["set a 2", "submit"]  # task set-a wants a = 1


def wrong_until_reflected(req: ChatRequest) -> str:
    """Acts wrongly until a reflection exists; then as the scripted model does (its plan)."""
    if req.meta.get("reflections"):
        return _act(req)
    return f"REASON: a guess.\nACTION: {WRONG[min(int(req.meta['step']), 1)]}"


def door(seen: list[ChatRequest], **handlers) -> MeteredDoor:  # type: ignore[no-untyped-def]
    model = ScriptedModel(handlers=handlers)
    complete = model.complete

    async def spy(request: ChatRequest):  # type: ignore[no-untyped-def]
        seen.append(request)
        return await complete(request)

    model.complete = spy  # type: ignore[method-assign]
    return MeteredDoor(ModelDoor(model, Config(), None, Accountant(Config())))


def set_a(env: ToyEnv) -> Task:
    return env.load_suite("toy-5")[0]


def settings(variant: str) -> EpisodeSettings:
    return EpisodeSettings(max_steps=4, variant=variant, stage=f"eval:{variant}")


def test_a_failed_try_is_reflected_on_and_the_reflection_decides_the_next_try() -> None:
    seen: list[ChatRequest] = []
    plan = 'I set the wrong value.\nPlan: ["list", "set a 1", "submit"]'
    ok = lambda req: json.dumps({"success": "set a 1" in req.meta["actions"], "reason": "r"})  # noqa: E731
    meter = door(seen, act=wrong_until_reflected, reflect=lambda req: plan, self_eval=ok)
    env = ToyEnv()
    traj = asyncio.run(
        run_reflexion(meter, env, set_a(env), settings("reflexion"), ReflexionConfig())
    )
    first, second = traj.attempts
    assert [s.action for s in first.steps] == WRONG and not first.success
    assert first.judged is False and first.reflection == plan  # the agent's own verdict
    # the next try does what the reflection planned, not what the first did
    assert [s.action for s in second.steps] == ["list", "set a 1", "submit"]
    assert second.judged is True and traj.success and traj.steps == second.steps
    shown = [r for r in seen if r.kind == "act" and r.meta.get("reflections") == [plan]]
    assert shown and all("REFLECTIONS" in r.messages[1]["content"] for r in shown)
    # every call is some try's: 2 acts + verdict + reflection, then 3 acts + verdict
    assert (first.calls, second.calls) == (4, 4) and meter.calls == 8
    assert [r.kind for r in seen].count("self_eval") == 2


def test_failed_by_reward_reads_the_environment_and_asks_no_verdict() -> None:
    seen: list[ChatRequest] = []
    meter = door(seen, act=wrong_until_reflected)
    env = ToyEnv()
    cfg = ReflexionConfig(trials=2, failed_by="reward")
    traj = asyncio.run(run_reflexion(meter, env, set_a(env), settings("reflexion"), cfg))
    assert [a.success for a in traj.attempts] == [False, True] and traj.success
    assert "self_eval" not in {r.kind for r in seen}
    assert traj.attempts[0].judge_reason == "the environment's reward was 0"


class LoggedToy(ToyEnv):
    """The toy store, logging every reset and step."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[list[str]] = []

    def reset(self, task, seed=None):  # type: ignore[no-untyped-def]
        self.log.append([])
        return super().reset(task, seed)

    def step(self, action):  # type: ignore[no-untyped-def]
        self.log[-1].append(action)
        return super().step(action)


def test_lats_restores_states_by_replay_and_keeps_to_its_node_budget() -> None:
    seen: list[ChatRequest] = []
    env = LoggedToy()
    meter = door(seen, act=wrong_until_reflected)
    traj = asyncio.run(run_lats(meter, env, set_a(env), settings("lats"), LatsConfig()))
    assert traj.success and [s.action for s in traj.steps] == ["set a 1", "submit"]
    assert [a.success for a in traj.attempts] == [False, True] and traj.attempts[0].reflection
    # the wrong branch's end (`submit`) was reached by reset + replaying `set a 2`, and the
    # final trajectory is one more replay of the branch that succeeded
    assert ["set a 2", "submit"] in env.log and env.log[-1] == ["set a 1", "submit"]
    assert all(s.digest for s in traj.steps)  # every replayed state was checked by digest
    assert traj.nodes == 4 and meter.calls <= LatsConfig().max_calls
    for nodes in (1, 2, 3):  # a budget it cannot finish in: never more nodes than allowed
        meter = door([], act=wrong_until_reflected)
        cfg = LatsConfig(max_nodes=nodes)
        small = asyncio.run(run_lats(meter, LoggedToy(), set_a(env), settings("lats"), cfg))
        assert small.nodes <= nodes
    meter = door([], act=wrong_until_reflected)
    cfg = LatsConfig(max_calls=5)
    capped = asyncio.run(run_lats(meter, LoggedToy(), set_a(env), settings("lats"), cfg))
    assert meter.calls == 5 and not capped.success


class Forgetful(ToyEnv):
    """A store whose reset does not restore what the task starts from: every reset differs."""

    resets = 0

    def reset(self, task, seed=None):  # type: ignore[no-untyped-def]
        obs, info = super().reset(task, seed)
        self.resets += 1
        self.state[f"r{self.resets}"] = "x"
        return obs, info


class Declared(ToyEnv):
    replays = False
    replays_why = "its pages change on their own"


def test_an_environment_that_cannot_replay_is_refused_in_one_line() -> None:
    seen: list[ChatRequest] = []
    env = Declared()
    with pytest.raises(CannotReplay) as declared:
        asyncio.run(run_lats(door(seen), env, set_a(env), settings("lats"), LatsConfig()))
    assert str(declared.value) == (
        "lats restores states by reset + replay; toy cannot: its pages change on their own"
    )
    assert not seen  # refused before any model call
    env = Forgetful()
    with pytest.raises(CannotReplay) as found:
        asyncio.run(run_lats(door(seen), env, set_a(env), settings("lats"), LatsConfig()))
    assert "did not reproduce its state" in str(found.value) and "\n" not in str(found.value)


def test_lats_on_an_environment_that_cannot_replay_is_one_line_and_no_run(tmp_path: Path) -> None:
    args = ["eval", "--env", "tau2.airline", "--model", "scripted", "--variants", "lats"]
    r = CliRunner().invoke(app, [*args, "--run", "t", "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "tau2.airline cannot: its reset asks a model" in r.output
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("env", ["toy", "sql"])
def test_reflexion_and_lats_run_from_lbi_eval_and_reach_the_report(
    env: str, tmp_path: Path
) -> None:
    args = ["eval", "--env", env, "--model", "scripted", "--variants", "none,reflexion,lats"]
    args += ["--limit", "2", "--run", "r", "--set", f"run_root={tmp_path}"]
    r = CliRunner().invoke(app, [*args, "--set", "embed.name=hash"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r" / "report" / "report.json").read_text())
    tries = {t["variant"]: t for t in report["trials"]}
    assert set(tries) == {"reflexion", "lats"} and all(t["final"] == 1.0 for t in tries.values())
    results = [x for x in report["results"] if x["variant"] in tries]
    assert len(results) == 4 and all(x["trials"] >= 1 and x["first_success"] for x in results)
    assert all(x["nodes"] >= 1 for x in results if x["variant"] == "lats")
    md = (tmp_path / "r" / "report" / "report.md").read_text()
    assert "| variant | episodes | pass@1 % | final % |" in md
    from lbi.config import load_config
    from lbi.run import open_run

    cfg = load_config(None, [f"run_root={tmp_path}", f"env={env}"])
    ctx = open_run(cfg.model_copy(update={"model": "scripted"}), "r")
    trajs = [t for t in ctx.store.all(Trajectory) if t.variant in tries]
    assert len(trajs) == 4 and all(t.attempts for t in trajs)


def test_the_estimate_counts_every_try_and_the_call_budget() -> None:
    from lbi.replicate.paper import PaperPlan, estimate

    plan = PaperPlan(name="p", suite="s", seeds=2, max_steps=3, only=["none", "reflexion", "lats"])
    calls = estimate(plan, 5)["eval_calls_max"]
    assert calls == {"none": 5 * 2 * 3, "reflexion": 5 * 2 * 3 * (3 + 2), "lats": 5 * 2 * 60}
