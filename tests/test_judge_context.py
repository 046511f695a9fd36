"""Judge batches fit the judge's context: a request over it is refused (llama.cpp: HTTP 400)."""

from __future__ import annotations

from lbi.pipeline.filter import CRITERIA, answer_tokens, pack, render_example
from lbi.types import Example, Step


def example(n: int, obs_chars: int, steps: int = 1) -> Example:
    each = [
        Step(index=i, observation="o" * obs_chars, action=f"act {n}", next_observation="done")
        for i in range(steps)
    ]
    return Example(
        env="toy", instruction=f"task {n}", style="task", trajectory_id=f"t{n}", task_id="x",
        i=0, j=steps - 1, policy="agent", steps=each,
    )  # fmt: skip


def chars(text: str) -> int:
    return len(text)


def test_without_a_known_context_batches_are_fixed_size() -> None:
    exs = [example(n, 50) for n in range(5)]
    groups, rejected = pack(exs, 2, None, chars, "j")
    assert [len(g) for g in groups] == [2, 2, 1] and not rejected


def test_batches_shrink_to_the_context_and_an_example_too_long_alone_is_rejected() -> None:
    short = [example(n, 300) for n in range(6)]
    huge = example(99, 800, steps=4)  # observations are cut to 800 characters each
    exs = [*short[:3], huge, *short[3:]]
    limit = 3000
    groups, rejected = pack(exs, 8, limit, chars, "judge-a")
    # Order is kept, nothing is lost: every example is in a group or rejected.
    assert [e for g in groups for e in g] == short and [v.example_id for v in rejected] == [huge.id]
    assert len(groups) > 1  # eight would not fit in 3,000 tokens
    for g in groups:
        prompt = sum(chars(render_example(e)) + 12 for e in g)
        assert prompt + answer_tokens(len(g)) < limit
    verdict = rejected[0]
    assert verdict.judge == "judge-a" and not verdict.accept
    assert set(verdict.criteria) == set(CRITERIA) and not any(verdict.criteria.values())
    assert (
        "too long to judge" in verdict.reasons["achieves"]
        and "context 3000" in verdict.reasons["achieves"]
    )
