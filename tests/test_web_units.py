"""Web environment pieces that need no browser: grammar, parsing, truncation, suites, docs."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from lbi.envs.web import actions
from lbi.envs.web.axtree import truncate
from lbi.envs.web.crawl import PageInfo, _Parser, page_doc
from lbi.envs.web.miniwob import QUICK, MiniwobEnv, task_classes
from lbi.envs.web.miniwob_docs import family, task_docstrings
from lbi.envs.web.server import build_demo_db
from lbi.envs.web.site_tasks import same_answer, suite_from_db
from lbi.envs.web.solutions import SOLVERS, read


def test_all_125_miniwob_tasks_are_listed_with_docs() -> None:
    names = list(task_classes())
    assert len(names) == 125
    assert set(QUICK) <= set(names) and set(SOLVERS) <= set(names)
    docs = task_docstrings()
    assert sum(bool(docs.get(n)) for n in names) >= 120  # nearly every task has its own docstring


def test_families_group_variants() -> None:
    assert family("click-tab-2-hard") == "click-tab-2"
    assert family("email-inbox-forward-nl-turk") == "email-inbox-forward"
    assert family("enter-text") == "enter-text"


def test_grammar_lists_every_action_of_the_set_and_nothing_else() -> None:
    aset = actions.action_set(actions.SITE_SUBSETS)
    g = actions.grammar(aset)
    called = set(re.findall(r'"(\w+)\("', g))
    assert called == set(aset.action_set)
    assert g.count("(") == g.count(")")  # balanced groups (literals hold matched pairs too)
    assert "\n" not in g  # one rule body on one line: the agent inlines it


@pytest.mark.parametrize(
    "action",
    [
        "click('12')",
        'fill("5", "a b")',
        "select_option('a7', 'Blue')",
        "send_msg_to_user('24')",
        "goto('http://127.0.0.1:1/x')",
    ],
)
def test_valid_actions_parse_to_code(action: str) -> None:
    code = actions.parse(actions.action_set(actions.SITE_SUBSETS), action)
    assert action.split("(")[0] + "(" in code


@pytest.mark.parametrize("action", ["", "  ", "click 12", "os.system('ls')", "DROP everything"])
def test_bad_actions_do_not_parse(action: str) -> None:
    with pytest.raises((ValueError, NameError)):
        actions.parse(actions.action_set(actions.MINIWOB_SUBSETS), action)


def test_action_description_comes_from_the_action_set() -> None:
    space = actions.action_space(actions.MINIWOB_SUBSETS, ["click('1')"])
    for name in actions.action_set(actions.MINIWOB_SUBSETS).action_set:
        assert f"{name}(" in space.description
    assert space.grammar and space.examples == ["click('1')"]


def test_truncate_cuts_at_lines_and_says_so() -> None:
    text = "\n".join(f"[{i}] button 'b{i}'" for i in range(500))
    out = truncate(text, 1000)
    assert len(out) <= 1000 and "more lines cut" in out
    assert all(line.startswith("[") for line in out.splitlines()[:-1])
    assert truncate("short", 1000) == "short"


def test_solution_reader_parses_the_observation_format() -> None:
    obs = (
        'Goal: Enter "Ann" into the text field.\nURL: x\n\nAccessibility tree:\n'
        "RootWebArea 'T'\n\t[14] textbox '' value='An', focused\n\t[15] button \"it's\"\n"
        "\t[18] checkbox 'Jc', checked='true'"
    )
    seen = read(obs)
    assert seen.goal == 'Enter "Ann" into the text field.'
    assert [e.bid for e in seen.elements] == ["14", "15", "18"]
    assert seen.find("textbox").value == "An" and seen.find("button").name == "it's"
    assert seen.find("checkbox").checked


def test_site_suite_comes_from_sql(tmp_path: Path) -> None:
    db = build_demo_db(tmp_path / "shop.db")
    tasks = suite_from_db(db, "http://127.0.0.1:9")
    by_name = {t.name: t for t in tasks}
    n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM products").fetchone()[0]
    assert by_name["products-count"].gold == {"answer": str(n)}
    assert by_name["customers-open"].gold == {"url_path": "/shop/customers"}
    f = by_name["products-filter"].gold["filter"]
    want = (
        sqlite3.connect(db)
        .execute("SELECT COUNT(*) FROM products WHERE category = ?", (f["value"],))
        .fetchone()[0]
    )
    assert f["count"] == want
    assert all(t.reference and t.origin == "benchmark" for t in tasks)
    # ids do not depend on the server's port, so reruns reuse stored tasks
    assert [t.id for t in suite_from_db(db, "http://127.0.0.1:7")] == [t.id for t in tasks]


def test_same_answer_is_lenient_on_form_only() -> None:
    assert (
        same_answer(" 24. ", "24") and same_answer("24.0", "24") and same_answer("Kite 3", "kite 3")
    )
    assert not same_answer("25", "24") and not same_answer("kite", "kite 3")


def test_crawl_parser_reads_titles_headings_forms_links() -> None:
    info = PageInfo(url="http://127.0.0.1:1/db")
    _Parser(info).feed(
        "<title>Shop</title><h1>shop</h1><form action='/db' method='get'><input name='q'>"
        "<input type='hidden' name='csrf'><button>Go</button></form><a href='/db/t#x'>t</a>"
    )
    assert info.title == "Shop" and info.headings == ["shop"]
    assert info.forms == ["method GET action /db; text q; button"]
    assert info.links == [("t", "http://127.0.0.1:1/db/t")]
    doc = page_doc("site", info)
    assert "127.0.0.1" not in doc.text  # docs hold paths, not the run's port
    assert "- t -> /db/t" in doc.text


def test_unknown_miniwob_task_is_a_clear_error() -> None:
    from lbi.envs.base import EnvError

    with pytest.raises(EnvError, match="unknown MiniWoB task"):
        MiniwobEnv(only="no-such-task")
