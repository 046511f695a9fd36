"""Contamination check: benchmark instructions found (or not) in the synthesised data."""

from __future__ import annotations

import pytest

from lbi.eval.contamination import (
    ContaminationError,
    check_contamination,
    ngrams,
    normalize,
    overlap_report,
)
from lbi.types import Example, Step, Task

BENCH = [
    Task(
        env="sql",
        origin="benchmark",
        name="spider_0",
        instruction="How many singers do we have in the concert database?",
    ),
    Task(
        env="sql",
        origin="benchmark",
        name="spider_1",
        instruction="What are the names and countries of all singers, ordered by age from oldest to youngest?",
    ),
    Task(
        env="sql",
        origin="benchmark",
        name="spider_2",
        instruction="Show the name of each stadium and the number of concerts held there in 2014 or later.",
    ),
]


def example(instruction: str, i: int = 0) -> Example:
    step = Step(index=0, observation="db", action="SELECT 1", next_observation="1")
    return Example(
        env="sql",
        instruction=instruction,
        style="task",
        trajectory_id=f"tr{i}",
        task_id=f"t{i}",
        i=0,
        j=0,
        policy="p",
        steps=[step],
    )


UNRELATED: list[Example | Task] = [
    example("List every table in the pets database and count the rows of each one.", 1),
    example("Find the average horsepower of cars made in 1980 from the car makers table.", 2),
    Task(
        env="sql",
        instruction="Which employees were hired after the evaluation started, sorted by salary?",
    ),
]


def test_normalize_ignores_case_punctuation_and_spacing() -> None:
    assert normalize("  What's the   COUNT?\n(of singers)") == "what s the count of singers"
    assert normalize("ＦＵＬＬ-width_text") == "full width text"
    assert ngrams(["a", "b", "c", "d"], 3) == {("a", "b", "c"), ("b", "c", "d")}


def test_planted_verbatim_instruction_is_found() -> None:
    planted = example(
        "Step 1. WHAT are the names and countries of all singers -- ordered by age from oldest to youngest. Then stop.",
        9,
    )
    report = overlap_report(BENCH, [*UNRELATED, planted])
    row = {r.task_name: r for r in report.tasks}["spider_1"]
    assert row.exact is True
    assert row.max_overlap == pytest.approx(1.0)
    assert (row.match_id, row.match_kind) == (planted.id, "example")
    assert report.n_exact == 1
    assert [r.task_name for r in report.flagged] == ["spider_1"]


def test_unrelated_data_is_not_flagged() -> None:
    report = overlap_report(BENCH, UNRELATED)
    assert report.n_flagged == 0
    assert report.max_overlap == 0.0
    assert all(not r.exact and r.match_id is None for r in report.tasks)
    assert report.n_data == 3


def test_partial_overlap_is_a_fraction() -> None:
    # shares the first 12 of spider_2's 17 words: 5 of its 10 eight-grams
    near = Task(
        env="sql",
        instruction="Show the name of each stadium and the number of concerts held in every year.",
    )
    row = overlap_report(BENCH, [near]).tasks[2]
    assert not row.exact
    assert row.max_overlap == pytest.approx(5 / 10)
    assert row.match_kind == "task"


def test_short_instruction_uses_its_own_length() -> None:
    short = [Task(env="sql", origin="benchmark", instruction="Count all singers.")]
    hit = overlap_report(short, [example("please count all singers now")])
    miss = overlap_report(short, [example("count all the singers")])
    assert (hit.tasks[0].n, hit.tasks[0].exact, hit.tasks[0].max_overlap) == (3, True, 1.0)
    assert miss.tasks[0].max_overlap == 0.0


def test_benchmark_tasks_in_the_data_are_not_matched_against_themselves() -> None:
    report = overlap_report(BENCH, [*BENCH, *UNRELATED])
    assert report.n_data == len(UNRELATED)
    assert report.n_flagged == 0


def test_check_refuses_unless_allowed_and_names_the_task() -> None:
    data = [*UNRELATED, example(BENCH[2].instruction.upper(), 5)]
    with pytest.raises(ContaminationError, match="spider_2") as err:
        check_contamination(BENCH, data)
    assert "verbatim" in str(err.value)
    report = check_contamination(BENCH, data, allow=True)
    assert report.n_flagged == 1
    assert "1/3 benchmark tasks" in report.line()
    assert check_contamination(BENCH, UNRELATED).n_flagged == 0
