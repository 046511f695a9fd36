"""MiniWoB through our wrapper on Debian Chromium: scripted solutions, checker, errors.

One environment (and so one browser) per module keeps this file to well under a minute.
A missing Chromium is an error here, never a skip.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.check import check_env
from lbi.envs.web.miniwob import QUICK, MiniwobEnv, benchmark_task
from lbi.envs.web.solutions import SOLVERS, solve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env() -> Iterator[MiniwobEnv]:
    e = MiniwobEnv()
    yield e
    e.close()


def _solve_all(env: MiniwobEnv, names: list[str], seed: int) -> dict[str, float]:
    return {n: solve(env, benchmark_task(n), seed=seed)[0] for n in names}


@pytest.mark.slow
def test_every_scripted_family_scores_1_quick_ones_included(env: MiniwobEnv) -> None:
    # Seed 3 here, seed 7 in the gold-rollout test below: every family at two seeds.
    assert len(QUICK) >= 10 and set(QUICK) <= set(SOLVERS)
    rewards = _solve_all(env, sorted(SOLVERS), seed=3)
    assert rewards == {n: 1.0 for n in SOLVERS}


def test_wrong_answer_scores_0_and_ends(env: MiniwobEnv) -> None:
    obs, info = env.reset(benchmark_task("click-button"), seed=1)
    goal_word = info["goal"].split('"')[1]
    wrong = next(
        line for line in obs.splitlines() if "] button '" in line and f"'{goal_word}'" not in line
    )
    bid = wrong.split("]")[0].split("[")[1]
    _, reward, done, _, step_info = env.step(f"click('{bid}')")
    assert (reward, done, step_info["error"]) == (0.0, True, False)


def test_bad_actions_come_back_as_errors_fast(env: MiniwobEnv) -> None:
    env.reset(benchmark_task("enter-text"), seed=0)
    for bad in ["", "type hello", "click('9999')", "fill('1', )", "import os"]:
        t = time.monotonic()
        obs, reward, done, _, info = env.step(bad)
        assert info["error"] and not done and reward == 0.0, bad
        assert "Error from the last action" in obs
        assert time.monotonic() - t < 5.0, f"{bad!r} took too long"


def test_observation_has_goal_ids_and_respects_budget() -> None:
    small = MiniwobEnv(max_chars=400, screenshot=True)
    try:
        obs, _info = small.reset(benchmark_task("click-checkboxes-large"), seed=0)
        assert obs.startswith("Goal: Select ") and len(obs) <= 400 and "more lines cut" in obs
        _, _, _, _, step_info = small.step("noop(10)")
        png = base64.b64decode(step_info["screenshot_png_b64"])
        assert png.startswith(b"\x89PNG")
    finally:
        small.close()


def test_reset_is_reproducible_and_seeds_differ(env: MiniwobEnv) -> None:
    a, _ = env.reset(benchmark_task("click-option"), seed=5)
    b, _ = env.reset(benchmark_task("click-option"), seed=5)
    c, _ = env.reset(benchmark_task("click-option"), seed=6)
    assert a == b and a != c


def test_suites_and_docs(env: MiniwobEnv) -> None:
    assert len(env.load_suite("miniwob-all")) == 125
    assert [t.name for t in env.load_suite("miniwob-quick")] == QUICK
    docs = env.docs()
    assert docs[0].title == "Web actions" and "click(" in docs[0].text
    assert any(d.source == "miniwob/click-tab-2" and "click-tab-2-hard" in d.text for d in docs)


def test_check_env_passes_for_one_task() -> None:
    report = check_env(lambda: make_env("miniwob.click-button", Config()), cycles=2)
    assert report.ok, [(r.name, r.detail) for r in report.results if not r.ok]
    assert any(r.name == "reference solutions score" and r.detail == "1/1" for r in report.results)


def _gold_elements_missing(names: list[str], seed: int) -> tuple[int, list[tuple[str, str]]]:
    """Gold trajectories through `drive` (each must score 1); every step, rendered as a
    retrieved example, must still show the element its action refers to."""
    import asyncio
    import re

    from lbi.agents.retrieval import render_record
    from lbi.pipeline.gold import gold_examples, gold_rollouts

    trajs = asyncio.run(gold_rollouts(MiniwobEnv, [benchmark_task(n) for n in names], [seed]))
    assert {t.task_id: t.reward for t in trajs} == {benchmark_task(n).id: 1.0 for n in names}
    missing, n_steps = [], 0
    for ex in gold_examples(trajs):
        for step in ex.steps:
            n_steps += 1
            shown = render_record(ex.model_copy(update={"steps": [step]})).split("REASON:")[0]
            for bid in re.findall(r"'(\d+)'", step.action):
                if not re.search(rf"^\s*\[{bid}\] ", shown, re.M):
                    missing.append((ex.instruction, step.action))
    return n_steps, missing


@pytest.mark.slow
def test_every_scripted_familys_gold_steps_show_their_element() -> None:
    # The quick families included: the QUICK-only version of this test was a subset of it.
    n_steps, missing = _gold_elements_missing(sorted(SOLVERS), seed=7)
    assert n_steps >= 40 and not missing, missing
