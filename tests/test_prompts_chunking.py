import itertools

from lbi.agents.act_prompt import build_messages
from lbi.agents.react import EpisodeSettings
from lbi.agents.shown import ShownExamples
from lbi.envs.base import ActionSpace
from lbi.pipeline.backward import labels_prompt, parse_labels
from lbi.pipeline.chunking import chunk_docs
from lbi.pipeline.filter import parse_verdicts
from lbi.pipeline.tasks import parse_tasks
from lbi.prompts import fence, render
from lbi.types import Doc, Example, Step

SPACE = ActionSpace(description="`list` or `submit`.")


def test_act_prompt_has_the_papers_sections_what_changes_each_step_last() -> None:
    hist = [Step(index=0, observation="o0", action="list", next_observation="empty")]
    msgs = build_messages(
        "toy", SPACE, "Do X.", hist, "obs now", ["ex one"], EpisodeSettings(), False
    )
    assert msgs[0]["role"] == "system" and "`list` or `submit`." in msgs[0]["content"]
    user = msgs[1]["content"]
    pos = [
        user.index(s)
        for s in ("OBJECTIVE: Do X.", "HISTORY:", "ADDITIONAL INFO:", "OBSERVATION:\nobs now")
    ]
    assert pos == sorted(pos)
    assert "1. ACTION: list\n   RESULT: empty" in user


def test_act_prompt_without_examples_has_no_additional_info() -> None:
    msgs = build_messages("toy", SPACE, "Do X.", [], "o", [], EpisodeSettings(), False)
    assert (
        "ADDITIONAL INFO" not in msgs[1]["content"] and "(as at START above)" in msgs[1]["content"]
    )


def test_golden_tasks_prompt() -> None:
    text = render(
        "tasks", env="toy", action_description="A", title="T", text="body", k=3, context_hint=""
    )
    assert text.startswith(
        'You write practice tasks for an agent that acts in the environment "toy".'
    )
    assert "Write 3 tasks" in text and '<documentation title="T">\nbody\n</documentation>' in text
    assert text.endswith('Reply with JSON only: {"tasks": [{"instruction": "..."}, ...]}')


def test_golden_backward_prompt_numbers_excerpts() -> None:
    text = labels_prompt("toy", ["w1", "w2"])
    tag = f"excerpt-{fence(['w1', 'w2'])}"  # the batch's boundary (see test_confinement_misc)
    assert "are 2 excerpts" in text and f'<{tag} id="2">\nw2\n</{tag}>' in text
    assert "Replicate the following: " in text


def test_parsers_on_malformed_and_adversarial_answers() -> None:
    assert parse_tasks(
        {
            "tasks": [
                {"instruction": "  a  b "},
                {"nope": 1},
                "plain string task",
                {"instruction": ""},
            ]
        },
        5,
    ) == ["a b", "plain string task"]
    assert parse_tasks(["not", "a dict"], 3) == []
    labels = parse_labels(
        {
            "labels": [
                {"window": 2, "task": "t2", "replicate": "did x"},
                {"window": 99, "task": "bad"},
                "junk",
                {"window": "1", "task": "t1", "replicate": ""},
            ]
        },
        2,
    )
    assert labels == {
        2: {"task": "t2", "replicate": "Replicate the following: did x"},
        1: {"task": "t1", "replicate": ""},
    }
    # Labels that say nothing, and task labels in the replicate style, are left out.
    empty = parse_labels(
        {
            "labels": [
                {
                    "window": 1,
                    "task": "Replicate the following:",
                    "replicate": "Replicate the following: ...",
                },
                {
                    "window": 2,
                    "task": " . ",
                    "replicate": "replicate the following: read the pets table",
                },
                {"window": 3, "task": "Replicate the following: count pets", "replicate": "-"},
            ]
        },
        3,
    )
    assert empty == {2: {"task": "", "replicate": "replicate the following: read the pets table"}}
    step = Step(index=0, observation="o", action="a", next_observation="n")
    exs = [
        Example(
            env="toy",
            instruction=f"i{n}",
            style="task",
            trajectory_id="t",
            task_id="k",
            i=0,
            j=0,
            policy="all",
            steps=[step],
        )
        for n in range(2)
    ]
    ok = {"ok": True, "reason": "fine"}
    vs = parse_verdicts(
        {
            "verdicts": [
                {"example": 1, "achieves": ok, "coherent": ok, "natural": ok, "reasonable": ok}
            ]
        },
        exs,
        "j",
    )
    assert vs[0].accept and not vs[1].accept and vs[1].reasons["achieves"] == "no verdict given"
    injected = parse_verdicts(
        {
            "verdicts": [
                {"example": 1, "achieves": "true", "coherent": ok, "natural": ok, "reasonable": ok}
            ]
        },
        exs[:1],
        "j",
    )
    assert not injected[0].accept  # only a real boolean true counts


def test_chunking_by_headings_within_limit() -> None:
    body = "# A\n" + "alpha " * 50 + "\n\n# B\nshort\n\n## C\n" + ("gamma line\n" * 200)
    chunks = chunk_docs([Doc(env="toy", source="d", title="D", text=body)], max_tokens=100)
    assert all(len(c.text) <= 400 for c in chunks)
    assert chunks[0].title == "A" and any(c.title.startswith("C") for c in chunks)
    assert "".join(c.text for c in chunks).count("gamma line") == 200


def test_spread_takes_chunks_evenly() -> None:
    from lbi.pipeline.tasks import spread

    chunks = [Doc(env="toy", source=str(n), text=f"t{n}") for n in range(10)]
    assert [d.source for d in spread(chunks, 3)] == ["0", "3", "6"]
    assert spread(chunks, None) == chunks and spread(chunks, 20) == chunks


def test_act_prompt_of_the_next_step_extends_this_steps_prompt() -> None:
    """Each step's prompt, up to its OBSERVATION, is the start of the next step's: the examples
    retrieved at a step stay where they were shown, one retrieved again is not repeated, and a
    server's prefix cache reuses all of it (issue 26)."""
    steps = [
        Step(index=i, observation=f"o{i}", action=f"act {i}", next_observation=f"r{i}")
        for i in range(3)
    ]
    shown, settings, prompts = ShownExamples(3600), EpisodeSettings(), []
    for at, retrieved in enumerate((["ex A"], ["ex A"], ["ex B", "ex A", "ex C"])):
        new = shown.show(at, retrieved)
        msgs = build_messages(
            "toy", SPACE, "Do X.", steps[:at], f"o{at}", new, settings, False, (), shown.earlier(at)
        )
        prompts.append(msgs[1]["content"])
    for now, nxt in itertools.pairwise(prompts):
        assert nxt.startswith(now[: now.index("\nOBSERVATION:")])
    last = prompts[-1]
    assert [last.count(f"ex {x}") for x in "ABC"] == [1, 1, 1]
    assert last.index("ex A") < last.index("1. ACTION: act 0") < last.index("ex B")
    assert "--- example 3 ---\nex C" in last and last.index("ex C") < last.index("OBSERVATION:")


def test_past_the_episodes_example_budget_only_this_steps_examples_stay() -> None:
    shown = ShownExamples(max_tokens=25)
    assert shown.show(0, ["a" * 40, "b" * 40]) == ["a" * 40, "b" * 40]  # 20 tokens
    assert shown.show(1, ["a" * 40, "c" * 40]) == ["a" * 40, "c" * 40]  # 30 > 25: start over
    assert shown.earlier(2) == {1: ["a" * 40, "c" * 40]}
    # steps HISTORY no longer shows take their examples with them
    assert shown.show(5, ["c" * 40], visible_from=3) == ["c" * 40] and shown.earlier(5) == {}
