"""Thinking models: the answer is read from the answer, never from the thinking, and the thinking
gets its own room, so default settings give whole answers. Against the fake server's thinking
profiles, whose reasoning (800 tokens, more than lbi's act and task limits) holds a decoy ACTION
and a decoy JSON value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.agents.answer import CUT
from lbi.agents.parse import parse_react
from lbi.cli import app
from lbi.config import Config
from lbi.models.json_answer import extract_json
from lbi.models.thinking import split_thinking, thinks_by_name
from lbi.run import RunContext
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.fake_thinking import DECOY_ACTION, DECOY_INSTRUCTION
from lbi.testing.providers import PROFILES
from lbi.types import Failure, Task, Trajectory

runner = CliRunner()
KEY_ENV = "LBI_TEST_THINKING_KEY"
ACTIONS = ["list", "set a 1", "get a", "submit"]


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.mark.parametrize(
    ("text", "answer", "thinking"),
    [
        ("<think>ACTION: x</think>\n\nREASON: r\nACTION: y", "REASON: r\nACTION: y", "ACTION: x"),
        ("<think>\nstill going, ACTION: x", "", "still going, ACTION: x"),  # cut while thinking
        ("the template opened it</think>\n{}", "{}", "the template opened it"),
        ("<|channel|>analysis<|message|>hm<|end|><|start|>assistant<|channel|>final<|message|>{}",
         "{}", "<|channel|>analysis<|message|>hm<|end|><|start|>assistant"),
        ("REASON: r\nACTION: y", "REASON: r\nACTION: y", ""),  # no thinking: as it was
    ],
)  # fmt: skip
def test_thinking_is_split_from_the_answer(text: str, answer: str, thinking: str) -> None:
    assert split_thinking(text) == (answer, thinking)


def test_parsers_never_read_the_thinking() -> None:
    text = '<think>ACTION: delete all\n{"tasks": ["decoy"]}</think>REASON: r\nACTION: list {"a": 1}'
    assert parse_react(text).action == 'list {"a": 1}'
    assert extract_json('<think>[1, 2]</think>\n{"ok": true}') == {"ok": True}
    with pytest.raises(ValueError, match="empty"):  # cut while thinking: no answer at all
        extract_json('<think>{"ok": true}')


def test_models_that_think_are_known_by_name() -> None:
    for name in ("openai:qwen3-8b", "local:/m/Qwen3-0.6B-Q8_0.gguf", "openai:deepseek-r1",
                 "openai:gpt-oss-20b", "openai:o4-mini", "openai:gemini-2.5-flash"):  # fmt: skip
        assert thinks_by_name(name), name
    for name in ("openai:gpt-4o-mini", "openai:Qwen3-4B-Instruct-2507", "local", "scripted"):
        assert not thinks_by_name(name), name


def _args(root: Path, srv: FakeOpenAIServer, model: str, *sets: str) -> list[str]:
    base = {
        "run_root": root,
        "models.openai.base_url": srv.base_url,
        "models.openai.api_key_env": KEY_ENV,
        "embed.name": "hash",
    }
    out = ["--env", "toy", "--model", f"openai:{model}", "--run", "t"]
    for key, value in base.items():
        out += ["--set", f"{key}={value}"]
    for assignment in sets:
        out += ["--set", assignment]
    return out


def _run(root: Path, srv: FakeOpenAIServer, model: str, *sets: str) -> dict[str, Any]:
    sent = []  # how many requests the server had seen when each command began
    for command in (["synth"], ["eval", "--variants", "none"]):
        sent.append(len(srv.bodies))
        r = runner.invoke(app, [*command, *_args(root, srv, model, *sets)])
        assert r.exit_code == 0, r.output
    ctx = RunContext("t", Config(run_root=str(root)), create=False)
    try:
        return {
            "tasks": ctx.store.all(Task),
            "trajectories": ctx.store.all(Trajectory),
            "failures": ctx.store.all(Failure),
            "stages": ctx.store.get_meta("accounting")["stages"],
            "sent": sent,
        }
    finally:
        ctx.store.close()


@pytest.fixture(params=["thinking", "thinking-field"])
def thinking(request: pytest.FixtureRequest) -> Iterator[FakeOpenAIServer]:
    profile = PROFILES[request.param]
    with FakeOpenAIServer(
        profile=profile, react_actions=ACTIONS, match_ids=True, array_items=3
    ) as server:
        yield server


def test_a_thinking_model_acts_and_answers_from_its_answer_with_room_to_think(
    thinking: FakeOpenAIServer, tmp_path: Path
) -> None:
    profile = thinking.profile
    assert profile is not None
    got = _run(tmp_path, thinking, profile.model)
    assert got["failures"] == []
    # Nothing was cut at default settings, in any stage, after the first answer's lesson.
    assert all(stats["truncated"] == 0 for stats in got["stages"].values()), got["stages"]
    steps = [s for t in got["trajectories"] if not t.variant.startswith("floor") for s in t.steps]
    assert len(steps) == (12 + 5) * len(ACTIONS)
    # Every action came from the answer; the thinking was kept in the step, not acted on.
    assert {s.action for s in steps} == set(ACTIONS)
    assert all(DECOY_ACTION not in s.reason + s.raw and DECOY_ACTION in s.thinking for s in steps)
    assert all(s.thinking.startswith("Let me think") and "<think>" not in s.raw for s in steps)
    # The tasks were parsed from the JSON answer, not from the JSON written while thinking.
    instructions = [t.instruction for t in got["tasks"] if t.origin == "docs"]
    assert len(instructions) == 12 and DECOY_INSTRUCTION not in instructions
    bodies = list(thinking.bodies)
    limits = [b["max_tokens"] for b in bodies]
    if profile.model == "qwen3-8b":  # known by name: room from the first call
        assert min(limits) >= 2048
    else:  # learnt from its first answers, cut while thinking: then room for every call
        # The task calls for the 4 doc chunks all start before any answer comes back: those
        # go out at the task stage's own limit, every other call with room to think.
        assert sorted(n for n in limits if n < 2048) == [660] * 4
        # What was learnt is kept for the endpoint: the next command gives room from its start.
        assert min(limits[got["sent"][1] :]) >= 2048


def test_without_room_to_think_the_answers_are_cut(tmp_path: Path) -> None:
    """What the room is for: with it off, the same model's act answers (384 tokens, 768 on the
    door's larger-limit retry, for 800 of thinking) are cut, and the agent never acts."""
    with FakeOpenAIServer(profile=PROFILES["thinking"], react_actions=ACTIONS) as srv:
        sets = ("models.thinking=off", "synth.max_chunks=1", "synth.max_steps=2")
        for stage in ("tasks", "rollout"):
            r = runner.invoke(app, [stage, *_args(tmp_path, srv, "qwen3-8b", *sets)])
            assert r.exit_code == 0, r.output
    ctx = RunContext("t", Config(run_root=str(tmp_path)), create=False)
    try:
        stages = ctx.store.get_meta("accounting")["stages"]
        steps = [s for t in ctx.store.all(Trajectory) for s in t.steps]
    finally:
        ctx.store.close()
    assert stages["rollout"]["truncated"] == len(steps) == 2  # 1 task, 2 steps
    assert all(s.error and CUT in s.next_observation and s.action == "" for s in steps)
