"""Statistics over evaluation episodes: success with intervals, pass^k, paired deltas, flips, floor.

Benchmarks here are small (Spider-dev has 23 tasks), so every number carries its uncertainty and
the suite's minimum detectable difference; a +4 pp "gain" on 23 tasks is noise and the report
must say so. Tasks are the unit of inference: seeds of one task are correlated (same question,
same database), so they are averaged per task before any interval is taken.

No scipy: the normal and Student-t quantiles come from exact CDFs (erf; the finite series for
integer df) inverted by bisection, which is simple, dependency-free and accurate to ~1e-10.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from statistics import fmean, stdev

from pydantic import BaseModel

from lbi.types import EvalResult

BASELINE = "none"
FLOOR_PREFIX = "floor:"
# The paper's variants first, in the order the report shows them; others sorted after them.
VARIANT_ORDER = ("none", "docs", "instruction", "observation", "model", "both", "distill")


class StatsError(ValueError):
    """Results that cannot be summarised as given (mixed suites/models, duplicate episodes)."""


# --- distributions -------------------------------------------------------------------------


def _invert(cdf: Callable[[float], float], p: float, lo: float = -8.0, hi: float = 8.0) -> float:
    """Bisection on a monotone CDF; widens the bracket first so heavy tails (t, df=1) fit."""
    if not 0.0 < p < 1.0:
        raise StatsError(f"quantile needs 0 < p < 1, got {p}")
    while cdf(lo) > p:
        lo *= 2
    while cdf(hi) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, abs(mid)):
            break
    return (lo + hi) / 2


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def normal_ppf(p: float) -> float:
    """Standard normal quantile, e.g. normal_ppf(0.975) = 1.959964."""
    return _invert(normal_cdf, p)


def t_cdf(t: float, df: int) -> float:
    """Student-t CDF for integer df by the finite series of Abramowitz & Stegun 26.7.3-4."""
    theta = math.atan(t / math.sqrt(df))
    c2, term = math.cos(theta) ** 2, 1.0
    if df % 2:  # A = (2/pi)(theta + sin·(cos + 2/3 cos^3 + ...)), (df-1)/2 terms
        series = 0.0
        term = math.cos(theta)
        for j in range((df - 1) // 2):
            series += term
            term *= c2 * (2 * j + 2) / (2 * j + 3)
        a = 2 / math.pi * (theta + math.sin(theta) * series)
    else:  # A = sin·(1 + 1/2 cos^2 + 1·3/(2·4) cos^4 + ...), df/2 terms
        series = 0.0
        for j in range(df // 2):
            series += term
            term *= c2 * (2 * j + 1) / (2 * j + 2)
        a = math.sin(theta) * series
    return 0.5 + a / 2


def t_ppf(p: float, df: int) -> float:
    """Student-t quantile, e.g. t_ppf(0.975, 22) = 2.073873."""
    if df <= 0:
        raise StatsError(f"t quantile needs df > 0, got {df}")
    return _invert(lambda t: t_cdf(t, df), p)


def sign_test_p(n_pos: int, n_neg: int) -> float:
    """Exact two-sided sign test: ties are dropped, P(as or more lopsided | fair coin)."""
    n = n_pos + n_neg
    if n == 0:
        return 1.0
    k = min(n_pos, n_neg)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


# --- one variant ---------------------------------------------------------------------------


def wilson(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval: unlike p ± z·se it stays inside [0, 1] and is sane at 0/n and n/n."""
    if n <= 0:
        return (0.0, 1.0)
    z = normal_ppf(0.5 + confidence / 2)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_hat_k(outcomes: Sequence[Sequence[bool]], k: int) -> float:
    """tau-bench's pass^k: mean over tasks of C(c, k) / C(n, k), the unbiased estimate of the
    chance that k fresh trials of a task all succeed (c successes in n trials of that task)."""
    per_task = [math.comb(sum(o), k) / math.comb(len(o), k) for o in outcomes if len(o) >= k]
    if not per_task:
        raise StatsError(f"pass^{k} needs tasks with at least {k} trials")
    return fmean(per_task)


class VariantSummary(BaseModel):
    """One row of the report. Costs are means per episode (one attempt at one task)."""

    variant: str
    n_tasks: int
    n_seeds: int
    n_episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    pass_k: dict[int, float]
    mean_steps: float
    mean_calls: float
    mean_prompt_tokens: float
    mean_completion_tokens: float
    mean_tokens: float
    mean_latency_s: float
    mean_cost_usd: float


def _check_uniform(results: Sequence[EvalResult]) -> None:
    suites = {r.suite for r in results}
    models = {r.model for r in results}
    if len(suites) > 1 or len(models) > 1:
        raise StatsError(
            f"results mix suites {sorted(suites)} / models {sorted(models)}; summarise one at a time"
        )
    seen: set[tuple[str, str, int]] = set()
    for r in results:
        key = (r.variant, r.task_id, r.seed)
        if key in seen:
            raise StatsError(
                f"duplicate episode variant={r.variant} task={r.task_id} seed={r.seed}"
            )
        seen.add(key)


def by_variant(results: Iterable[EvalResult]) -> dict[str, list[EvalResult]]:
    """Group results per variant, in report order: paper variants, others, then floor policies."""
    groups: dict[str, list[EvalResult]] = defaultdict(list)
    for r in results:
        groups[r.variant].append(r)

    def rank(v: str) -> tuple[int, int, str]:
        if v in VARIANT_ORDER:
            return (0, VARIANT_ORDER.index(v), v)
        return (2 if v.startswith(FLOOR_PREFIX) else 1, 0, v)

    return {v: groups[v] for v in sorted(groups, key=rank)}


def _per_task(results: Iterable[EvalResult]) -> dict[str, dict[int, bool]]:
    table: dict[str, dict[int, bool]] = defaultdict(dict)
    for r in results:
        table[r.task_id][r.seed] = r.success
    return dict(table)


def summarize_variant(results: Sequence[EvalResult]) -> VariantSummary:
    """The success interval is Wilson over tasks (each task's seeds averaged first), not over
    episodes: seeds of one task are correlated, and counting them as independent would make a
    23-task suite look like a 69-task one. With one seed the two coincide."""
    _check_uniform(results)
    if len({r.variant for r in results}) != 1:
        raise StatsError("summarize_variant expects the results of exactly one variant")
    tasks = _per_task(results)
    per_task_rate = [fmean(seeds.values()) for seeds in tasks.values()]
    low, high = wilson(sum(per_task_rate), len(per_task_rate))
    outcomes = [list(seeds.values()) for seeds in tasks.values()]
    min_trials = min(len(o) for o in outcomes)  # pass^k over the same tasks for every k
    prompt = fmean(r.prompt_tokens for r in results)
    completion = fmean(r.completion_tokens for r in results)
    return VariantSummary(
        variant=results[0].variant,
        n_tasks=len(tasks),
        n_seeds=len({r.seed for r in results}),
        n_episodes=len(results),
        successes=sum(r.success for r in results),
        success_rate=fmean(per_task_rate),
        ci_low=low,
        ci_high=high,
        pass_k={k: pass_hat_k(outcomes, k) for k in range(1, min_trials + 1)},
        mean_steps=fmean(r.steps for r in results),
        mean_calls=fmean(r.calls for r in results),
        mean_prompt_tokens=prompt,
        mean_completion_tokens=completion,
        mean_tokens=prompt + completion,
        mean_latency_s=fmean(r.latency_s for r in results),
        mean_cost_usd=fmean(r.cost_usd for r in results),
    )


def summarize(results: Sequence[EvalResult]) -> list[VariantSummary]:
    _check_uniform(results)
    return [summarize_variant(rs) for rs in by_variant(results).values()]


# --- paired comparison ---------------------------------------------------------------------


def mde(
    n_tasks: int, sd: float | None = None, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Minimum detectable mean difference of a two-sided paired t-test over n_tasks.

    (t_{1-alpha/2} + t_{power}) · sd / sqrt(n), df = n - 1, the usual normal-approximation power
    formula with t quantiles for small n. sd=None (or 0: no observed spread) takes the worst case
    for differences of success rates in [-1, 1], sd = 1. None when n < 2 (nothing is detectable).
    """
    if n_tasks < 2:
        return None
    s = sd if sd else 1.0
    df = n_tasks - 1
    return (t_ppf(1 - alpha / 2, df) + t_ppf(power, df)) * s / math.sqrt(n_tasks)


class Comparison(BaseModel):
    """A variant against the baseline on the (task, seed) pairs both ran."""

    variant: str
    baseline: str
    n_pairs: int  # (task, seed) episodes present on both sides
    n_tasks: int
    variant_rate: float
    baseline_rate: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float  # exact sign test over per-task differences
    n_better: int  # tasks where the variant's mean success is higher
    n_worse: int
    discordant: int  # episodes where exactly one side succeeded
    sd: float
    mde: float | None


def paired_diff_ci(diffs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """t-interval on per-task differences.

    Why t and not a bootstrap: per-task differences are bounded and roughly symmetric, the
    t-interval is deterministic and near nominal coverage from ~15 tasks, while a percentile
    bootstrap undercovers at n = 20-30 (it is a t-interval with z in place of t, in effect).
    When every difference is equal (sd = 0) the t-interval is a point, which would claim
    certainty from 23 ties; instead we widen by the exact one-sided bound on the share of tasks
    that could still differ (Clopper-Pearson for 0 of n: 1 - (alpha/2)^(1/n)), times the most a
    task can move.
    """
    n = len(diffs)
    if n == 0:
        return (-1.0, 1.0)
    mean = fmean(diffs)
    sd = stdev(diffs) if n > 1 else 0.0
    if n > 1 and sd > 0:
        half = t_ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    else:
        half = (1.0 - ((1 - confidence) / 2) ** (1 / n)) * (1.0 + abs(mean))
    return (max(-1.0, mean - half), min(1.0, mean + half))


def compare(results: Sequence[EvalResult], variant: str, baseline: str = BASELINE) -> Comparison:
    """Paired comparison; only (task, seed) pairs present on both sides count."""
    _check_uniform(results)
    ours = _per_task(r for r in results if r.variant == variant)
    theirs = _per_task(r for r in results if r.variant == baseline)
    diffs: list[float] = []
    rates: list[tuple[float, float]] = []
    n_pairs = discordant = 0
    for task_id in sorted(ours.keys() & theirs.keys()):
        seeds = sorted(ours[task_id].keys() & theirs[task_id].keys())
        if not seeds:
            continue
        a = [float(ours[task_id][s]) for s in seeds]
        b = [float(theirs[task_id][s]) for s in seeds]
        n_pairs += len(seeds)
        discordant += sum(x != y for x, y in zip(a, b, strict=True))
        rates.append((fmean(a), fmean(b)))
        diffs.append(fmean(a) - fmean(b))
    if not diffs:
        raise StatsError(f"no (task, seed) pairs shared by {variant!r} and {baseline!r}")
    low, high = paired_diff_ci(diffs)
    sd = stdev(diffs) if len(diffs) > 1 else 0.0
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return Comparison(
        variant=variant,
        baseline=baseline,
        n_pairs=n_pairs,
        n_tasks=len(diffs),
        variant_rate=fmean(r[0] for r in rates),
        baseline_rate=fmean(r[1] for r in rates),
        diff=fmean(diffs),
        ci_low=low,
        ci_high=high,
        p_value=sign_test_p(better, worse),
        n_better=better,
        n_worse=worse,
        discordant=discordant,
        sd=sd,
        mde=mde(len(diffs), sd),
    )


def compare_all(results: Sequence[EvalResult], baseline: str = BASELINE) -> list[Comparison]:
    """Every non-floor variant against the baseline; empty when the baseline did not run."""
    variants = by_variant(results)
    if baseline not in variants:
        return []
    return [
        compare(results, v, baseline)
        for v in variants
        if v != baseline and not v.startswith(FLOOR_PREFIX)
    ]


# --- flips and floor -----------------------------------------------------------------------


class Flip(BaseModel):
    """A task whose verdict differs between seeds within one variant."""

    variant: str
    task_id: str
    task_name: str
    by_seed: dict[int, bool]


def flips(results: Sequence[EvalResult]) -> list[Flip]:
    names = {r.task_id: r.task_name for r in results}
    return [
        Flip(variant=v, task_id=t, task_name=names[t], by_seed=dict(sorted(seeds.items())))
        for v, rs in by_variant(results).items()
        for t, seeds in sorted(_per_task(rs).items())
        if len(set(seeds.values())) > 1
    ]


class FloorScore(BaseModel):
    """What a trivial policy scores, and which tasks it solves (in any seed)."""

    policy: str
    success_rate: float
    solved: list[str]


def floor_scores(results: Sequence[EvalResult]) -> list[FloorScore]:
    """Scores of the `floor:*` variants in results; a suite where an empty answer passes 3 of 23
    tasks has a floor of 13 %, and a variant's gains on those tasks mean nothing."""
    out: list[FloorScore] = []
    for variant, rs in by_variant(results).items():
        if not variant.startswith(FLOOR_PREFIX):
            continue
        tasks = _per_task(rs)
        rate = fmean(fmean(seeds.values()) for seeds in tasks.values())
        solved = sorted(t for t, seeds in tasks.items() if any(seeds.values()))
        out.append(FloorScore(policy=variant, success_rate=rate, solved=solved))
    return out
