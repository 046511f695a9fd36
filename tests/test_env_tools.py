"""The shared tool-action format: parsing what models write, native calls, schema text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbi.aio import BackgroundLoop
from lbi.envs.docs import split_markdown
from lbi.envs.tools.actions import (
    ToolActionError,
    ToolCall,
    format_tool_action,
    parse_tool_action,
    tool_call_from_openai,
)
from lbi.envs.tools.schema import describe_tools, tool_action_space

WANT = ToolCall("get_order", {"order_id": "#W1", "n": 2})


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_order", "arguments": {"order_id": "#W1", "n": 2}}',
        '```json\n{"name": "get_order", "arguments": {"order_id": "#W1", "n": 2}}\n```',
        "{'name': 'get_order', 'arguments': {'order_id': '#W1', 'n': 2}}",
        'I will look it up. {"name": "get_order", "arguments": {"order_id": "#W1", "n": 2}} Done!',
        '{"name": "get_order", "arguments": "{\\"order_id\\": \\"#W1\\", \\"n\\": 2}"}',
        '{"type": "function", "function": {"name": "get_order", "arguments": {"order_id": "#W1", "n": 2}}}',
        '{"tool": "get_order", "args": {"order_id": "#W1", "n": 2}}',
        '{\n  "name": "get_order",\n\n  "arguments": {"order_id": "#W1", "n": 2}\n}',
    ],
)
def test_parse_tolerates_how_models_write_json(text: str) -> None:
    assert parse_tool_action(text) == WANT


def test_parse_reads_python_literals_with_true_false_null() -> None:
    call = parse_tool_action("{'name': 'set', 'arguments': {'a': true, 'b': null, 'c': false}}")
    assert call == ToolCall("set", {"a": True, "b": None, "c": False})


def test_missing_arguments_means_none() -> None:
    assert parse_tool_action('{"name": "list_tables"}') == ToolCall("list_tables", {})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty action"),
        ("   ", "empty action"),
        ("call get_order please", "no JSON object"),
        ('{"arguments": {}}', 'no "name" field'),
        ('{"name": 3}', "non-empty string"),
        ('{"name": "x", "arguments": [1, 2]}', "must be a JSON object"),
        ('{"name": "x", "arguments": "{not json"}', "not valid JSON"),
    ],
)
def test_unreadable_actions_return_a_readable_error(text: str, reason: str) -> None:
    err = parse_tool_action(text)
    assert isinstance(err, ToolActionError)
    assert reason in str(err)


@given(
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none()),
    ),
)
def test_format_then_parse_round_trips(name: str, args: dict[str, object]) -> None:
    assert parse_tool_action(format_tool_action(name, args)) == ToolCall(name, args)


def test_native_tool_calls_become_action_strings() -> None:
    native = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_order", "arguments": '{"order_id": "#W1", "n": 2}'},
    }
    assert parse_tool_action(tool_call_from_openai(native)) == WANT
    # Malformed arguments survive as a string so the environment can report them.
    broken = tool_call_from_openai({"function": {"name": "get_order", "arguments": "{oops"}})
    err = parse_tool_action(broken)
    assert isinstance(err, ToolActionError) and "not valid JSON" in str(err)


SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Get an order's status.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "description": "like '#W1'"},
                    "kind": {"enum": ["a", "b"]},
                    "items": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["order_id"],
            },
        },
    }
]


def test_describe_tools_lists_signature_types_and_requiredness() -> None:
    text = describe_tools(SCHEMAS)
    assert "get_order(order_id, kind?, items?)" in text
    assert "Get an order's status." in text
    assert "- order_id (string, required): like '#W1'" in text
    assert '- kind ("a" | "b", optional)' in text
    assert "- items (list[string], optional)" in text
    assert describe_tools([]) == "No tools are available."


def test_action_space_carries_schemas_and_a_grammar_over_names() -> None:
    space = tool_action_space(SCHEMAS, "Preface.", ["x"])
    assert space.tools == SCHEMAS
    assert space.description.startswith("Preface.") and '"arguments"' in space.description
    assert space.grammar is not None and '"\\"get_order\\""' in space.grammar


def test_split_markdown_keeps_subsections_with_their_parent() -> None:
    text = "# Policy\nintro\n## Cancel\nrule 1\n### Detail\nrule 2\n```\n# not a heading\n```\n## Refund\nrule 3"
    sections = split_markdown(text)
    assert [t for t, _ in sections] == ["Policy", "Cancel", "Refund"]
    assert "### Detail" in sections[1][1] and "# not a heading" in sections[1][1]


def test_background_loop_runs_coroutines_and_times_out() -> None:
    import asyncio

    loop = BackgroundLoop("test-loop")

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    assert loop.run(add(2, 3)) == 5
    with pytest.raises(TimeoutError):
        loop.run(asyncio.sleep(5), timeout=0.05)
    loop.close()
    loop.close()  # idempotent


def test_actions_are_one_line_json() -> None:
    action = format_tool_action("respond", {"content": "line one\nline two"})
    assert "\n" not in action and json.loads(action)["arguments"]["content"] == "line one\nline two"
