"""Examples carry what their actions act on; no system prompt shows a concrete sample action;
budgets count the model's tokens; web actions honour lbi's timeout."""

from __future__ import annotations

import re
from pathlib import Path

from lbi.agents.focus import GAP, anchors, focus, strip_noise
from lbi.agents.react import EpisodeSettings, build_messages
from lbi.agents.retrieval import fill_budget, render_record
from lbi.envs.toy import ToyEnv
from lbi.eval.metered import MeteredDoor
from lbi.tokens import counter_for, estimate_tokens
from lbi.types import Step, Trajectory

URL = "file:///work/main/.venv/lib/python3.11/site-packages/miniwob/html/miniwob/click-tab.html"
TREE = "\n".join(
    [
        "Goal: Click on Tab #3.",
        f"URL: {URL}",
        "Accessibility tree:",
        f"RootWebArea 'Click Tab Task', focused, url='{URL}'",
        *[f"\t[{n}] paragraph 'filler text number {n} " + "x" * 40 + "'" for n in range(30, 60)],
        "\t[61] tab 'Tab #3', expanded=False",
        f"\t\t[62] link 'Tab #3', url='{URL}#tabs-3'",
    ]
)


def test_long_file_urls_shrink_to_their_last_part() -> None:
    text = strip_noise(TREE)
    assert "file://" not in text and "URL: click-tab.html" in text
    assert "[62] link 'Tab #3', url='click-tab.html#tabs-3'" in text


def test_focus_keeps_the_acted_on_element_goal_and_context_within_budget() -> None:
    out = focus(TREE, "click('62')", 400)
    assert len(out) <= 400 + 10 * len(GAP)
    lines = out.splitlines()
    assert lines[0] == "Goal: Click on Tab #3."
    assert any(line.strip().startswith("[62] link 'Tab #3'") for line in lines)
    assert any(line.strip().startswith("[61] tab") for line in lines)  # its context
    assert GAP in lines and "[30]" not in out  # the top of a long page went, not the element
    assert TREE[:400] != out and "[62]" not in TREE[:400]  # first-N characters would lose it


def test_anchors_for_web_sql_and_other_actions() -> None:
    assert anchors("fill('16', 'kenda')")[0] == ["16"]
    assert anchors("SELECT name FROM singer JOIN concert ON a = b")[1] == ["singer", "concert"]
    schema = "\n".join(
        [f"CREATE TABLE t{n} (a int, b text)" for n in range(40)]
        + ["CREATE TABLE singer (name text)"]
    )
    assert "CREATE TABLE singer" in focus(schema, "SELECT name FROM singer", 120)
    assert "get zebra" not in focus("x\n" * 300 + "zebra = 1\n", "get zebra", 60) and (
        "zebra = 1" in focus("x\n" * 300 + "zebra = 1\n", "get zebra", 60)
    )


def test_rendered_example_shows_the_element_of_every_step() -> None:
    steps = [
        Step(index=0, observation=TREE, action="click('62')", next_observation=TREE),
        Step(index=1, observation=TREE, action="click('45')", next_observation="done"),
    ]
    traj = Trajectory(
        task_id="t", env="miniwob", instruction="Click on Tab #3.", model="gold", steps=steps
    )
    text = render_record(traj)
    assert "[62] link 'Tab #3'" in text and "[45] paragraph" in text and "file://" not in text


def test_no_template_shows_a_concrete_sample_action() -> None:
    prompts = Path(__file__).parents[1] / "src" / "lbi" / "prompts"
    for path in sorted(prompts.glob("*.j2")):
        for line in path.read_text().splitlines():
            m = re.search(r"\bACTION:\s*(.*)$", line)
            if m and m.group(1) and not m.group(1).startswith("("):
                value = m.group(1).strip()
                assert value.startswith(("{{", "<")), f"{path.name}: sample action {line!r}"
    env = ToyEnv()
    space = env.action_space()
    system = build_messages("toy", space, "do it", [], "obs", [], EpisodeSettings(), False)[0]
    assert space.examples and not any(f"ACTION: {ex}" in system["content"] for ex in space.examples)
    assert "ACTION: <one action>" in system["content"]


def test_web_action_description_has_no_concrete_call_and_actions_use_our_timeout() -> None:
    from lbi.envs.web import actions

    space = actions.action_space(actions.MINIWOB_SUBSETS, ["click('12')"])
    assert not re.search(r"\w+\('[A-Za-z]?\d+'", space.description), space.description
    code = actions.parse(actions.action_set(actions.MINIWOB_SUBSETS, 2500), "click('12')")
    assert "timeout=500" not in code and "timeout=2500" in code


class _Counting:
    def count_tokens(self, text: str) -> int:
        return len(text)  # one token a character: much stricter than the estimate


class _Door:
    name = "x"
    capabilities = None
    model = _Counting()


def test_budget_counts_with_the_models_tokenizer_through_proxies() -> None:
    meter = MeteredDoor(_Door())  # type: ignore[arg-type]
    count = counter_for(meter)
    assert count("abcd") == 4 and counter_for(object()) is estimate_tokens
    texts = ["a" * 40, "b" * 40, "c" * 40]
    assert fill_budget(texts, 50) == texts  # 10 estimated tokens each
    assert fill_budget(texts, 50, count) == ["a" * 40]


def test_smollm2_counts_with_its_own_vocabulary() -> None:
    from lbi.config import Config
    from lbi.models.local import make_local

    model = make_local("", Config())
    ratio = model.count_tokens(strip_noise(TREE)) / estimate_tokens(strip_noise(TREE))
    assert model.count_tokens("Hello") == 1 and ratio > 1.2, ratio
