"""The agent loop with models that can act: the first observation stays in the prompt, and an
answer that repeats an earlier failing action is asked once more (issue 26)."""

from __future__ import annotations

import asyncio

from lbi.agents.react import EpisodeSettings, run_episode
from lbi.config import Config
from lbi.envs.toy import ToyEnv
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest
from lbi.models.door import ModelDoor
from lbi.models.scripted import ScriptedModel


def _run(act, settings: EpisodeSettings):
    seen: list[ChatRequest] = []

    def record(req: ChatRequest) -> str:
        seen.append(req)
        return act(req)

    model = ScriptedModel(handlers={"act": record})
    door = ModelDoor(model, Config(), None, Accountant(Config()))
    env = ToyEnv()
    task = env.load_suite("toy-5")[0]
    traj = asyncio.run(run_episode(door, env, task, settings, None))
    return traj, seen


def test_a_repeated_failing_action_is_asked_again_with_the_error() -> None:
    def act(req: ChatRequest) -> str:
        if "NOTE: your answer repeated" in req.messages[-1]["content"]:
            return "REASON: try another\nACTION: list"
        return "REASON: r\nACTION: get nothing"

    traj, seen = _run(act, EpisodeSettings(max_steps=3, retry_repeats=2))
    # steps 2 and 3 each repeat step 1's failure at first: one more call each, then `list`
    assert [s.action for s in traj.steps] == ["get nothing", "list", "list"]
    assert len(seen) == 5
    note = seen[2].messages[-1]["content"]
    assert "repeated the action of step 1" in note and "no key 'nothing'" in note
    # the step records the request that produced its action, note included
    assert traj.steps[1].messages[-1]["content"] == note


def test_without_retry_the_repeat_runs() -> None:
    traj, seen = _run(
        lambda r: "REASON: r\nACTION: get nothing",
        EpisodeSettings(max_steps=3, retry_repeats=0),
    )
    assert [s.action for s in traj.steps] == ["get nothing"] * 3 and len(seen) == 3


def test_the_first_observation_stays_in_every_prompt() -> None:
    traj, seen = _run(lambda r: "REASON: r\nACTION: list", EpisodeSettings(max_steps=3))
    start = traj.steps[0].observation
    for req in seen:
        user = req.messages[1]["content"]
        assert "START (what you saw before your first action):\n" + start[:50] in user
    assert "OBSERVATION:\n(as at START above)" in seen[0].messages[1]["content"]
    assert "[the same action as step 1]" in seen[2].messages[1]["content"]


def test_re_asks_are_capped_per_episode() -> None:
    traj, seen = _run(lambda r: "REASON: r\nACTION: get nothing", EpisodeSettings(max_steps=5))
    assert [s.action for s in traj.steps] == ["get nothing"] * 5
    assert len(seen) == 5 + 1  # one re-ask (the default), then the repeats run
