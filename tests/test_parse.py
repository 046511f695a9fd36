import pytest

from lbi.agents.parse import ParseError, parse_react, react_grammar


@pytest.mark.parametrize(
    ("text", "reason", "action"),
    [
        ("REASON: look first.\nACTION: list", "look first.", "list"),
        ("**Reason:** check\n**Action:** get a", "check", "get a"),
        ("reason: x\naction: `SELECT 1`", "x", "SELECT 1"),
        (
            "REASON: multi\nACTION:\n```sql\nSELECT a,\n  b FROM t\n```\nHope this helps!",
            "multi",
            "SELECT a,\n  b FROM t",
        ),
        ("Thought: hmm\nACTION: submit\n\nI am done now.", "hmm", "submit"),
        ("I will list.\nACTION: list", "I will list.", "list"),
        ("REASON: a\nACTION: set a 1\nREASON: again\nACTION: submit", "a", "set a 1"),
        ("REASON：全角\nACTION：list", "全角", "list"),
        (
            'REASON: r\nACTION: {"name": "f",\n\n "arguments": {}}\nDone.',
            "r",
            '{"name": "f",\n\n "arguments": {}}',
        ),
    ],
)
def test_parse_react_accepts_common_variants(text: str, reason: str, action: str) -> None:
    got = parse_react(text)
    assert (got.reason, got.action) == (reason, action)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "REASON: I think so",
        "ACTION:",
        "ACTION:   \n",
        "just chatting",
        "REASON: x\nACTION: ``",
    ],
)
def test_parse_react_rejects_unreadable_answers(text: str) -> None:
    with pytest.raises(ParseError):
        parse_react(text)


def test_react_grammar_embeds_action_rule() -> None:
    g = react_grammar('"list" | "submit"')
    assert (
        g.startswith('root ::= "REASON:" [ \\n]{0,2} reason')
        and 'action ::= "list" | "submit"' in g
    )
