"""Per-step action lists (`info["valid_actions"]`, lbi.envs.base.valid_actions): a model that
takes grammars gets that step's actions as its grammar, any other backend has an action outside
the list turned into an error observation; an environment that lists nothing is untouched.

The game is tests/plugins/rooms.py: a house whose rooms have different exits, listed in
`info["moves"]` (the gym adapter's `actions_info`)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbi.agents.parse import react_grammar
from lbi.agents.react import EpisodeSettings, run_episode
from lbi.config import Config, load_config
from lbi.envs.base import VALID_ACTIONS, Environment, make_env, valid_actions
from lbi.envs.toy import ToyEnv
from lbi.models.accounting import Accountant
from lbi.models.base import Capabilities, ChatRequest
from lbi.models.door import ModelDoor, open_door
from lbi.models.scripted import ScriptedModel
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES
from lbi.types import Task, Trajectory

PLUGINS = Path(__file__).parent / "plugins"
ROOMS = "gym:rooms:LbiRooms-v0"
LISTED = ["env_options.gym.docs=rooms:MANUAL", "env_options.gym.actions_info=moves"]
# hall -> kitchen -> cellar -> kitchen -> hall -> library -> attic: every room's exits differ.
ROUTE = ["go east", "go down", "go up", "go west", "go north", "go up"]
EXITS = {
    "hall": ["go north", "go east"],
    "kitchen": ["go west", "go down"],
    "cellar": ["go up"],
    "library": ["go south", "go up"],
}


@pytest.fixture(autouse=True)
def _game_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


@pytest.fixture
def rooms() -> Iterator[Environment]:
    env = make_env(ROOMS, load_config(None, LISTED))
    yield env
    env.close()


def _task(reference: list[str]) -> Task:
    return Task(env=ROOMS, instruction="Find the attic.", reference=reference)


def _spy(model: ScriptedModel, seen: list[ChatRequest]) -> ModelDoor:
    complete = model.complete

    async def spy(request: ChatRequest):  # type: ignore[no-untyped-def]
        seen.append(request)
        return await complete(request)

    model.complete = spy  # type: ignore[method-assign]
    return ModelDoor(model, Config(), None, Accountant(Config()))


def _episode(door: ModelDoor, env: Environment, task: Task, steps: int) -> Trajectory:
    return asyncio.run(run_episode(door, env, task, EpisodeSettings(max_steps=steps)))


def _literals(grammar: str | None) -> list[str]:
    """The actions an answer grammar's `action` rule allows, where it is a list of literals."""
    assert grammar is not None
    rule = re.search(r"^action ::= (.*)$", grammar, re.M)
    assert rule is not None, grammar
    return [json.loads(lit) for lit in rule.group(1).split(" | ")]


def _room(observation: str) -> str:
    found = re.search(r"You are in the (\w+)\.", observation)
    assert found is not None, observation
    return found.group(1)


def test_the_gym_adapter_passes_the_listed_actions_on_for_each_step(rooms: Environment) -> None:
    task = _task([])
    _, info = rooms.reset(task, seed=0)
    assert info[VALID_ACTIONS] == EXITS["hall"] == valid_actions(info)
    obs, _, _, _, info = rooms.step("go north")
    assert valid_actions(info) == EXITS["library"] and "Valid actions: go south, go up" in obs
    obs, _, _, _, info = rooms.step("go east")  # not an exit here: the adapter's own error
    assert info["error"] and valid_actions(info) == EXITS["library"]  # the room did not change
    plain = make_env(ROOMS, load_config(None, LISTED[:1]))
    try:
        _, info = plain.reset(task, seed=0)
        assert VALID_ACTIONS not in info and valid_actions(info) is None  # no actions_info
    finally:
        plain.close()
    assert valid_actions({VALID_ACTIONS: []}) is None  # empty, or not strings: no list
    assert valid_actions({VALID_ACTIONS: [1, 2]}) is None and valid_actions(None) is None


def test_a_grammar_model_is_sent_exactly_each_steps_actions(rooms: Environment) -> None:
    seen: list[ChatRequest] = []
    door = _spy(ScriptedModel(), seen)
    assert door.capabilities.grammar
    traj = _episode(door, rooms, _task(ROUTE), steps=8)
    assert traj.success and [s.action for s in traj.steps] == ROUTE
    assert len(seen) == len(ROUTE)
    for request, step in zip(seen, traj.steps, strict=True):
        assert _literals(request.grammar) == EXITS[_room(step.observation)]
    assert len({r.grammar for r in seen}) == len(EXITS)  # one grammar per room, not per episode
    assert seen[0].grammar != seen[1].grammar


def test_an_environment_that_lists_nothing_gets_the_grammar_it_got_before() -> None:
    """The same request as before per-step lists: the space's grammar at every step, and the
    same cache key (grammar and meta are all that the lists could have changed)."""
    rule = '"go " ("north" | "south" | "east" | "west" | "up" | "down")'
    env = make_env(ROOMS, load_config(None, [LISTED[0], f"env_options.gym.grammar={rule}"]))
    seen: list[ChatRequest] = []
    try:
        traj = _episode(_spy(ScriptedModel(), seen), env, _task(ROUTE), steps=8)
    finally:
        env.close()
    assert traj.success and len(seen) == len(ROUTE)
    assert {r.grammar for r in seen} == {react_grammar(rule)}
    assert all(set(r.meta) == {"step", "reference", "fallback"} for r in seen)

    listed = make_env(ROOMS, load_config(None, [*LISTED, f"env_options.gym.grammar={rule}"]))
    seen = []
    try:
        _episode(_spy(ScriptedModel(), seen), listed, _task(ROUTE[:1]), steps=1)
    finally:
        listed.close()
    assert _literals(seen[0].grammar) == EXITS["hall"]  # a list replaces the space's grammar


def _fake_openai_config(base_url: str, tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "run_root": str(tmp_path),
            "cache": {"enabled": False},
            "models": {
                "openai": {
                    "base_url": base_url,
                    "api_key_env": "LBI_TEST_NO_KEY",
                    "use_probe": False,
                    "tools": "text",
                }
            },
            "door": {"backoff_base_s": 0.001},
        }
    )


async def _openai_episode(cfg: Config, env: Environment, task: Task) -> Trajectory:
    door = open_door(f"openai:{PROFILES['openai-chat'].model}", cfg)
    try:
        assert not door.capabilities.grammar
        # No re-ask of a repeated failed action: step 3 repeats step 1's words on purpose.
        settings = EpisodeSettings(max_steps=4, retry_repeats=0)
        return await run_episode(door, env, task, settings)
    finally:
        await door.aclose()


def test_without_grammars_an_action_outside_the_steps_list_is_an_error_step(
    rooms: Environment, tmp_path: Path
) -> None:
    with FakeOpenAIServer(profile=PROFILES["openai-chat"]) as srv:
        srv.replies.extend(
            [
                "REASON: climb.\nACTION: go up",  # an exit of the library, not of the hall
                "REASON: north.\nACTION: go north",
                "REASON: climb.\nACTION: go up",  # the same words, valid now
            ]
        )
        traj = asyncio.run(
            _openai_episode(_fake_openai_config(srv.base_url, tmp_path), rooms, _task([]))
        )
    first, second, third = traj.steps
    assert first.action == "go up" and first.error
    # The agent's check (not the game's or the adapter's "not a valid action"), with the list:
    assert first.next_observation == (
        "Error: `go up` is not one of the valid actions at this step; it was not run.\n"
        "Valid actions: go north, go east"
    )
    assert not second.error and _room(second.next_observation) == "library"
    assert not third.error and traj.success and len(traj.steps) == 3


class _ListingToy(ToyEnv):
    """The toy store, listing `list` and `submit` until `list` ran, then only `submit`; it
    records every action it is stepped with."""

    def __init__(self) -> None:
        super().__init__()
        self.stepped: list[str] = []

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        obs, info = super().reset(task, seed)
        return obs, {**info, VALID_ACTIONS: ["list", "submit"]}

    def step(self, action: str) -> Any:
        self.stepped.append(action)
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, VALID_ACTIONS: ["submit"]}


def test_any_environment_may_list_its_actions_and_an_unlisted_one_is_not_run() -> None:
    """A plain lbi environment (no gym adapter) and a backend without grammars: `set a 1` is in
    the toy's action space but not in the step's list, so the environment never sees it."""
    answers = iter(["set a 1", "list", "list", "submit"])
    model = ScriptedModel(handlers={"act": lambda req: f"REASON: r.\nACTION: {next(answers)}"})
    model.capabilities = Capabilities(grammar=False)
    seen: list[ChatRequest] = []
    env = _ListingToy()
    traj = _episode(_spy(model, seen), env, ToyEnv().load_suite("toy-5")[0], steps=6)
    assert [s.action for s in traj.steps] == ["set a 1", "list", "list", "submit"]
    assert [s.error for s in traj.steps] == [True, False, True, False]
    assert env.stepped == ["list", "submit"]  # the unlisted actions were never run
    assert "Valid actions: submit" in traj.steps[2].next_observation
    assert all(r.grammar is None for r in seen)


@pytest.mark.local_model
def test_the_local_model_answers_one_of_each_steps_listed_actions(
    rooms: Environment, tmp_path: Path
) -> None:
    pytest.importorskip("xllamacpp")
    from lbi.models.assets import smollm2_gguf_path
    from lbi.models.base import ModelError

    try:
        smollm2_gguf_path()
    except ModelError as e:
        pytest.skip(str(e))
    cfg = load_config(
        None, [f"run_root={tmp_path}", "cache.enabled=false", "models.local.threads=1"]
    )
    door = open_door("local", cfg)

    async def episode() -> Trajectory:
        try:
            return await run_episode(door, rooms, _task([]), EpisodeSettings(max_steps=3))
        finally:
            await door.aclose()

    traj = asyncio.run(episode())
    assert len(traj.steps) >= 2, [s.next_observation for s in traj.steps]
    for step in traj.steps:
        assert not step.error, step.next_observation
        assert step.action in EXITS[_room(step.observation)], (step.observation, step.action)
