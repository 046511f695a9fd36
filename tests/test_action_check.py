"""The fallback action check: every shipped environment's GBNF action rule, compiled to a regex,
accepts its examples and reference solutions and rejects garbage; and an agent on an endpoint
without grammars (an openai: provider profile) gets an invalid action back as an error
observation, with the environment not stepped."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from lbi.agents.action_check import action_check, compile_gbnf
from lbi.agents.react import EpisodeSettings, run_episode
from lbi.config import Config
from lbi.envs.base import ActionSpace, make_env
from lbi.envs.desktop import actions as desktop_actions
from lbi.envs.sql.env import _grammar as sql_grammar
from lbi.envs.sql.spider import load_queries
from lbi.envs.tools.actions import DONE, format_tool_action
from lbi.envs.tools.schema import function_schema, tool_action_space
from lbi.envs.toy import ToyEnv
from lbi.envs.web import actions as web_actions
from lbi.models.door import open_door
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES
from lbi.types import Task

GARBAGE = ["", "hello world", "I will now list the keys.", "ACTION: list", "{}", "click(", "DROP"]


def _check(space: ActionSpace, good: list[str]) -> None:
    check = action_check(space)
    assert check is not None, "the grammar is inside the compiled subset"
    assert good, "something to accept"
    for action in good:
        assert check.allows(action), action
    for action in GARBAGE:
        assert not check.allows(action), action


def test_toy_grammar_accepts_its_examples_and_reference_solutions() -> None:
    env = ToyEnv()
    refs = [a for t in env.load_suite("toy-5") for a in t.reference]
    _check(env.action_space(), env.action_space().examples + refs)
    check = action_check(env.action_space())
    assert check is not None
    assert (
        not check.allows("set a") and not check.allows("list all") and not check.allows("SET a 1")
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_sql_grammar_accepts_its_examples_and_the_spider_gold(dialect: str) -> None:
    examples = ["SELECT count(*) FROM singer", "submit", "submit SELECT 1"]
    gold = [q.gold for q in load_queries()]
    assert len(gold) == 23
    _check(ActionSpace("sql", grammar=sql_grammar(dialect), examples=examples), examples + gold)
    check = action_check(ActionSpace("sql", grammar=sql_grammar(dialect)))
    assert check is not None
    # Layout is not content: a query over several lines passes (and runs as written).
    assert check.allows("SELECT name\n  FROM singer\n WHERE age > 30")
    assert not check.allows("EXPLAIN SELECT 1") and not check.allows("submitted")


def test_web_grammars_accept_miniwob_and_site_examples() -> None:
    from lbi.envs.web.miniwob import EXAMPLES as MINIWOB
    from lbi.envs.web.site import EXAMPLES as SITE

    miniwob = web_actions.action_space(web_actions.MINIWOB_SUBSETS, MINIWOB)
    _check(miniwob, [*MINIWOB, "click('a12')", 'fill("5", "two words")', "hover('3')"])
    site = web_actions.action_space(web_actions.SITE_SUBSETS, SITE)
    _check(site, [*SITE, "send_msg_to_user('42')", "goto('http://127.0.0.1:1/x')", "go_back()"])
    check = action_check(miniwob)
    assert check is not None
    assert not check.allows("click(12)")  # the bid is a string
    assert not check.allows("goto('http://x')")  # navigation is not in MiniWoB's subset
    assert "click(" in check.starts and "fill(" in check.starts


def test_desktop_grammar_accepts_its_examples_and_reference_solutions() -> None:
    from lbi.envs.desktop.tasks import SUITE, load_suite

    refs = [a for t in load_suite(SUITE) for a in t.reference]
    space = desktop_actions.action_space()
    _check(space, space.examples + refs)


def test_tool_grammar_accepts_tau2_references_and_any_json_layout() -> None:
    env = make_env("tau2.airline", Config())
    space = env.action_space()
    refs = [a for t in env.load_suite(env.suites()[0]) for a in t.reference]
    _check(space, space.examples + refs)
    check = action_check(space)
    assert check is not None
    # The canonical form is what is checked: single quotes, no spaces, a fence all pass ...
    assert check.allows("{'name': 'done', 'arguments': {}}")
    assert check.allows('{"name":"get_user_details","arguments":{"user_id":"x"}}')
    # ... an unknown tool does not.
    assert not check.allows(format_tool_action("delete_everything", {}))
    mcp_like = tool_action_space(
        [
            function_schema("read_file", "Read a file", {"path": {"type": "string"}}),
            function_schema(DONE, "End the episode"),
        ],
        "MCP",
        [format_tool_action("read_file", {}), format_tool_action(DONE)],
    )
    _check(mcp_like, [*mcp_like.examples, format_tool_action("read_file", {"path": "a b"})])


def test_plugin_counter_grammar_accepts_its_examples() -> None:
    sys.path.insert(0, str(Path(__file__).parent / "plugins" / "counter_pkg"))
    try:
        from lbi_counter import CounterEnv
    finally:
        sys.path.pop(0)
    space = CounterEnv().action_space()
    _check(space, [*space.examples, "add -3", "add 10"])


@pytest.mark.parametrize(
    "body",
    [
        'root ::= "a"',  # a whole grammar, not a rule body
        '"set " key',  # a reference to another rule
        '"a" {2,x}',  # a malformed repetition
        '"open',  # an unterminated literal
        '"\\q"',  # an unknown escape
    ],
)
def test_constructs_outside_the_subset_are_not_checked(body: str) -> None:
    assert compile_gbnf(body) is None
    assert action_check(ActionSpace("x", grammar=body)) is None


def test_compiled_subset_semantics() -> None:
    pattern = compile_gbnf('"a"{2} [^\\n]{0,3} ("x" | [0-9]+)? "\\u00e9" . # comment')
    assert pattern is not None
    assert pattern.fullmatch("aa12é\n") and pattern.fullmatch("aaxyzxé-")
    assert not pattern.fullmatch("a12é-") and not pattern.fullmatch("aa1234é")
    assert compile_gbnf("[\\]\\-a]+").fullmatch("]-a")  # type: ignore[union-attr]


class _CountingToy(ToyEnv):
    steps: list[str] = []

    def step(self, action: str) -> Any:
        _CountingToy.steps.append(action)
        return super().step(action)


@pytest.mark.parametrize("check", [True, False])
def test_an_invalid_action_from_an_openai_endpoint_is_an_error_and_not_run(
    check: bool, tmp_path: Path
) -> None:
    profile = PROFILES["openai-chat"]
    assert not profile.grammar
    task = ToyEnv().load_suite("toy-5")[0]
    with FakeOpenAIServer(profile=profile) as srv:
        srv.replies.extend(
            [
                "REASON: look first.\nACTION: show me everything",
                "REASON: store it.\nACTION: set a 1",
                "REASON: done.\nACTION: submit",
            ]
        )
        cfg = Config.model_validate(
            {
                "run_root": str(tmp_path),
                "cache": {"enabled": False},
                "models": {
                    "openai": {
                        "base_url": srv.base_url,
                        "api_key_env": "LBI_TEST_NO_KEY",
                        "use_probe": False,
                        "tools": "text",
                        "check_actions": check,
                    }
                },
                "door": {"backoff_base_s": 0.001},
            }
        )
        _CountingToy.steps = []
        traj = asyncio.run(_episode(cfg, task))
    first = traj.steps[0]
    assert first.action == "show me everything" and first.error
    if check:
        assert _CountingToy.steps == ["set a 1", "submit"]  # the env never saw the bad action
        assert "not an action of this environment" in first.next_observation
        assert "set KEY VALUE" in first.next_observation  # what the action space allows
        assert "starts with one of: set, get, delete, list, submit" in first.next_observation
        assert "For example: list" in first.next_observation
        assert first.next_observation == traj.steps[1].observation  # the model was shown it
    else:
        assert _CountingToy.steps[0] == "show me everything"  # the env's own error
        assert "unknown or malformed action" in first.next_observation
    assert traj.success and len(traj.steps) == 3


async def _episode(cfg: Config, task: Task) -> Any:
    door = open_door(f"openai:{PROFILES['openai-chat'].model}", cfg)
    try:
        assert not door.capabilities.grammar
        return await run_episode(door, _CountingToy(), task, EpisodeSettings(max_steps=4))
    finally:
        await door.aclose()
