"""The benchmark suite for the shipped MCP test server (`mcp-library`, quick: first three).

Each task's gold is checked on state, through the server's read-only `query` tool after
`done`, or on the answer given to `done`; any sequence of actions that gets there passes.
"""

from __future__ import annotations

from typing import Any

from lbi.envs.tools.actions import format_tool_action
from lbi.types import Task


def _q(sql: str, expect: list[dict[str, Any]]) -> dict[str, Any]:
    return {"tool": "query", "arguments": {"sql": sql}, "expect": expect}


# (name, instruction, reference tool calls, gold). Gold checks read the database through the
# query tool after `done`, so any sequence of actions that reaches the state passes.
SUITE: list[tuple[str, str, list[tuple[str, dict[str, Any]]], dict[str, Any]]] = [
    (
        "add-member",
        "Register a new member, Dana Scully, with the email dana@example.org.",
        [
            (
                "insert_row",
                {
                    "table": "members",
                    "values": {"name": "Dana Scully", "email": "dana@example.org"},
                },
            )
        ],
        {
            "checks": [
                _q(
                    "SELECT name, email FROM members WHERE email = 'dana@example.org'",
                    [{"name": "Dana Scully", "email": "dana@example.org"}],
                )
            ]
        },
    ),
    (
        "return-dune",
        "Ada Byron has brought back Dune. Record the return.",
        [
            ("query", {"sql": "SELECT id FROM loans WHERE book_id = 1 AND member_id = 1"}),
            ("update_rows", {"table": "loans", "values": {"returned": 1}, "where": {"id": 1}}),
        ],
        {"checks": [_q("SELECT returned FROM loans WHERE book_id = 1", [{"returned": 1}])]},
    ),
    (
        "count-copies",
        "How many copies of Foundation does the library own? Give the number as the answer.",
        [("query", {"sql": "SELECT copies FROM books WHERE title = 'Foundation'"})],
        {"answer": "3"},
    ),
    (
        "more-copies",
        "The library bought two more copies of Neuromancer. Update its stock.",
        [
            (
                "update_rows",
                {"table": "books", "values": {"copies": 3}, "where": {"title": "Neuromancer"}},
            )
        ],
        {"checks": [_q("SELECT copies FROM books WHERE title = 'Neuromancer'", [{"copies": 3}])]},
    ),
    (
        "lend-hyperion",
        "Lend Hyperion to Grace Hopper, due on 2025-02-01.",
        [
            ("query", {"sql": "SELECT id FROM books WHERE title = 'Hyperion'"}),
            ("query", {"sql": "SELECT id FROM members WHERE name = 'Grace Hopper'"}),
            (
                "insert_row",
                {
                    "table": "loans",
                    "values": {"book_id": 4, "member_id": 3, "due": "2025-02-01", "returned": 0},
                },
            ),
        ],
        {
            "checks": [
                _q(
                    "SELECT member_id, due, returned FROM loans WHERE book_id = 4",
                    [{"member_id": 3, "due": "2025-02-01", "returned": 0}],
                )
            ]
        },
    ),
    (
        "new-email",
        "Alan Turing's email is now turing@example.org. Update it.",
        [
            (
                "update_rows",
                {
                    "table": "members",
                    "values": {"email": "turing@example.org"},
                    "where": {"name": "Alan Turing"},
                },
            )
        ],
        {
            "checks": [
                _q(
                    "SELECT email FROM members WHERE name = 'Alan Turing'",
                    [{"email": "turing@example.org"}],
                )
            ]
        },
    ),
    (
        "add-book",
        "Add the book Snow Crash by Neal Stephenson, published 1992, with one copy.",
        [
            (
                "insert_row",
                {
                    "table": "books",
                    "values": {
                        "title": "Snow Crash",
                        "author": "Neal Stephenson",
                        "year": 1992,
                        "copies": 1,
                    },
                },
            )
        ],
        {
            "checks": [
                _q(
                    "SELECT author, year, copies FROM books WHERE title = 'Snow Crash'",
                    [{"author": "Neal Stephenson", "year": 1992, "copies": 1}],
                )
            ]
        },
    ),
    (
        "out-on-loan",
        "Which book is currently out on loan? Answer with its title.",
        [
            (
                "query",
                {
                    "sql": "SELECT b.title FROM loans l JOIN books b ON b.id = l.book_id WHERE l.returned = 0"
                },
            )
        ],
        {"answer": "Dune"},
    ),
]


def suite_tasks(env: str = "mcp") -> list[Task]:
    """The benchmark tasks for this server; the first three are the quick subset."""
    return [
        Task(
            env=env,
            name=f"mcp-library-{name}",
            instruction=instruction,
            origin="benchmark",
            gold=gold,
            setup={"suite": "mcp-library", "task": name},
            reference=[
                *(format_tool_action(t, a) for t, a in calls),
                format_tool_action("done", {"answer": gold.get("answer", "")}),
            ],
        )
        for name, instruction, calls, gold in SUITE
    ]
