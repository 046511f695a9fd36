"""Statistics of the evaluation: quantiles, Wilson, pass^k, paired deltas, MDE, flips, floor."""

from __future__ import annotations

import itertools
import random
from statistics import fmean

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbi.eval.stats import (
    StatsError,
    compare,
    compare_all,
    flips,
    floor_scores,
    mde,
    normal_ppf,
    paired_diff_ci,
    pass_hat_k,
    sign_test_p,
    summarize,
    summarize_variant,
    t_cdf,
    t_ppf,
    wilson,
)
from lbi.types import EvalResult


def ep(variant: str, task: str, seed: int, ok: bool, **kw: object) -> EvalResult:
    fields: dict = {"suite": "s", "model": "m", "reward": float(ok), "steps": 2} | kw
    return EvalResult(
        variant=variant, task_id=task, task_name=f"name-{task}", seed=seed, success=ok, **fields
    )


# --- quantiles against published tables (R: qnorm, qt) ---------------------------------------


@pytest.mark.parametrize(
    ("p", "z"), [(0.975, 1.959963985), (0.8, 0.8416212336), (0.5, 0.0), (0.025, -1.959963985)]
)
def test_normal_quantiles(p: float, z: float) -> None:
    assert normal_ppf(p) == pytest.approx(z, abs=1e-8)


@pytest.mark.parametrize(
    ("p", "df", "t"),
    [
        (0.975, 1, 12.70620474),
        (0.975, 2, 4.30265273),
        (0.975, 3, 3.18244631),
        (0.975, 10, 2.22813885),
        (0.975, 22, 2.07387307),
        (0.975, 30, 2.04227246),
        (0.975, 200, 1.97189622),
        (0.8, 1, 1.37638192),
        (0.8, 22, 0.85826605),
        (0.95, 5, 2.01504837),
    ],
)
def test_t_quantiles(p: float, df: int, t: float) -> None:
    assert t_ppf(p, df) == pytest.approx(t, abs=1e-6)


def test_t_cdf_is_symmetric_and_tends_to_normal() -> None:
    for df in (1, 2, 7, 40):
        assert t_cdf(1.3, df) + t_cdf(-1.3, df) == pytest.approx(1.0, abs=1e-12)
    assert t_ppf(0.975, 5000) == pytest.approx(normal_ppf(0.975), abs=1e-3)


# --- Wilson and pass^k ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # binom::binom.wilson / statsmodels proportion_confint(method="wilson")
    [
        (0, 10, 0.0, 0.2775328),
        (1, 10, 0.0178762, 0.4041500),
        (5, 10, 0.2365931, 0.7634069),
        (10, 10, 0.7224672, 1.0),
    ],
)
def test_wilson_reference_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got == pytest.approx((low, high), abs=1e-6)


def test_pass_hat_k_hand_checked() -> None:
    outcomes = [[True, True, False], [True, False, False], [False, False, False]]
    assert pass_hat_k(outcomes, 1) == pytest.approx(1 / 3)
    assert pass_hat_k(outcomes, 2) == pytest.approx((1 / 3) / 3)  # C(2,2)/C(3,2) for task 1 only
    assert pass_hat_k(outcomes, 3) == 0.0
    assert pass_hat_k([[True] * 3, [True, True, False]], 2) == pytest.approx((1 + 1 / 3) / 2)
    assert pass_hat_k([[True] * 3, [True, True, False]], 3) == pytest.approx(0.5)
    with pytest.raises(StatsError):
        pass_hat_k([[True]], 2)


@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=10))
def test_pass_hat_k_is_non_increasing_in_k(outcomes: list[list[bool]]) -> None:
    values = [pass_hat_k(outcomes, k) for k in range(1, 5)]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(values))
    assert values[0] == pytest.approx(fmean(fmean(o) for o in outcomes))


def test_summary_counts_and_costs() -> None:
    rs = [
        ep(
            "docs",
            "a",
            0,
            True,
            prompt_tokens=100,
            completion_tokens=10,
            cost_usd=0.5,
            latency_s=2.0,
        ),
        ep(
            "docs",
            "a",
            1,
            False,
            prompt_tokens=300,
            completion_tokens=30,
            cost_usd=1.5,
            latency_s=4.0,
        ),
        ep(
            "docs",
            "b",
            0,
            True,
            prompt_tokens=200,
            completion_tokens=20,
            cost_usd=1.0,
            latency_s=3.0,
        ),
        ep(
            "docs",
            "b",
            1,
            True,
            prompt_tokens=200,
            completion_tokens=20,
            cost_usd=1.0,
            latency_s=3.0,
        ),
    ]
    s = summarize_variant(rs)
    assert (s.n_tasks, s.n_seeds, s.n_episodes, s.successes) == (2, 2, 4, 3)
    assert s.success_rate == pytest.approx(0.75)
    assert (s.ci_low, s.ci_high) == pytest.approx(wilson(1.5, 2))  # over tasks, not episodes
    assert s.pass_k == pytest.approx({1: 0.75, 2: 0.5})
    assert (s.mean_tokens, s.mean_cost_usd, s.mean_latency_s) == pytest.approx((220.0, 1.0, 3.0))


def test_one_seed_interval_equals_episode_wilson() -> None:
    rs = [ep("none", f"t{i}", 0, i < 4) for i in range(10)]
    s = summarize_variant(rs)
    assert (s.ci_low, s.ci_high) == pytest.approx(wilson(4, 10))


def test_mixed_or_duplicate_results_are_refused() -> None:
    with pytest.raises(StatsError, match="mix"):
        summarize([ep("none", "a", 0, True), ep("none", "b", 0, True, suite="other")])
    with pytest.raises(StatsError, match="duplicate"):
        summarize([ep("none", "a", 0, True), ep("none", "a", 0, False)])


def test_summary_order_puts_paper_variants_first_and_floor_last() -> None:
    rs = [ep(v, "a", 0, True) for v in ("floor:empty", "zeta", "both", "none", "docs")]
    assert [s.variant for s in summarize(rs)] == ["none", "docs", "both", "zeta", "floor:empty"]


# --- paired comparison ------------------------------------------------------------------------


def synthetic(n_tasks: int, effect: float, seeds: int, rng: random.Random) -> list[EvalResult]:
    """Tasks with base success p ~ U(0.1, 0.7); the variant adds `effect` to every task."""
    out = []
    for t in range(n_tasks):
        p = rng.uniform(0.1, 0.7)
        for s in range(seeds):
            out.append(ep("none", f"t{t}", s, rng.random() < p))
            out.append(ep("docs", f"t{t}", s, rng.random() < p + effect))
    return out


def test_paired_ci_covers_the_true_effect() -> None:
    rng = random.Random(7)
    reps, effect = 300, 0.15
    covered = sum(
        c.ci_low <= effect <= c.ci_high
        for c in (compare(synthetic(40, effect, 3, rng), "docs") for _ in range(reps))
    )
    assert covered / reps >= 0.91  # nominal 0.95; 300 reps put the 2-sigma band at ~0.925


def test_paired_ci_shrinks_with_more_tasks() -> None:
    rng = random.Random(11)

    def width(n: int) -> float:
        cs = [compare(synthetic(n, 0.1, 2, rng), "docs") for _ in range(30)]
        return fmean(c.ci_high - c.ci_low for c in cs)

    w20, w80, w320 = width(20), width(80), width(320)
    assert w20 > w80 > w320
    assert w80 / w320 == pytest.approx(2.0, rel=0.2)  # width ~ 1/sqrt(n)


def test_compare_counts_only_shared_pairs() -> None:
    rs = [ep("none", "a", 0, False), ep("none", "a", 1, False), ep("none", "b", 0, True)]
    rs += [
        ep("docs", "a", 0, True),
        ep("docs", "b", 0, True),
        ep("docs", "b", 1, False),
        ep("docs", "c", 0, True),
    ]
    c = compare(rs, "docs")
    assert (c.n_pairs, c.n_tasks, c.discordant) == (2, 2, 1)  # (a,0) and (b,0)
    assert c.diff == pytest.approx(0.5)
    assert (c.n_better, c.n_worse) == (1, 0)
    with pytest.raises(StatsError, match="no \\(task, seed\\) pairs"):
        compare([*rs, ep("model", "z", 0, True)], "model")


def test_compare_all_skips_baseline_and_floor() -> None:
    rs = [ep(v, "a", 0, True) for v in ("none", "docs", "floor:empty")]
    assert [c.variant for c in compare_all(rs)] == ["docs"]
    assert compare_all([ep("docs", "a", 0, True)]) == []


def test_all_ties_do_not_give_a_point_interval() -> None:
    low, high = paired_diff_ci([0.0] * 23)
    assert low < 0 < high
    assert high == pytest.approx(1 - 0.025 ** (1 / 23))


def test_sign_test_exact_values() -> None:
    assert sign_test_p(8, 1) == pytest.approx(2 * 10 / 512)
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1.0
    assert sign_test_p(0, 6) == pytest.approx(2 / 64)


def test_mde_is_monotone_in_n_and_matches_formula() -> None:
    for sd in (None, 0.4):
        values = [mde(n, sd) for n in range(2, 200)]
        assert all(a is not None and b is not None and a > b for a, b in itertools.pairwise(values))
    assert mde(23) == pytest.approx((2.07387307 + 0.85826605) / 23**0.5, abs=1e-6)
    assert mde(23, 0.0) == mde(23)  # no observed spread: worst case
    assert mde(1) is None


# --- flips and floor --------------------------------------------------------------------------


def test_flips_are_tasks_whose_seeds_disagree() -> None:
    rs = [
        ep("none", "a", 0, True),
        ep("none", "a", 1, False),
        ep("none", "b", 0, True),
        ep("none", "b", 1, True),
    ]
    rs += [ep("docs", "a", 0, False), ep("docs", "a", 1, False), ep("docs", "c", 0, True)]
    found = flips(rs)
    assert [(f.variant, f.task_id, f.by_seed) for f in found] == [
        ("none", "a", {0: True, 1: False})
    ]
    assert found[0].task_name == "name-a"


def test_floor_scores_and_solved_tasks() -> None:
    rs = [ep("floor:empty", t, 0, t in {"b", "d"}) for t in "abcd"]
    rs += [ep("floor:constant", t, s, t == "a" and s == 1) for t in "abcd" for s in (0, 1)]
    rs += [ep("none", "a", 0, True)]
    got = {f.policy: f for f in floor_scores(rs)}
    assert set(got) == {"floor:empty", "floor:constant"}
    assert got["floor:empty"].solved == ["b", "d"]
    assert got["floor:empty"].success_rate == pytest.approx(0.5)
    assert got["floor:constant"].solved == ["a"]
    assert got["floor:constant"].success_rate == pytest.approx(0.5 / 4)
