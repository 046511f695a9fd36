"""`lbi experiment judges`: build the labelled set, run the committee on it, write the page.

Gold rollouts are kept in the run `<name>-gold-rollouts` (shared with `experiment paper`) and
the verdicts in `<name>-judged`, so a rerun resumes and pays for nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.models.accounting import Accountant, Stats
from lbi.pipeline.filter import STAGE, judge_examples
from lbi.replicate.arms import gold_data
from lbi.replicate.judges import (
    KINDS,
    Pair,
    Score,
    failed_episodes,
    kind_counts,
    labelled_set,
    scores,
    table,
)
from lbi.replicate.page import machine
from lbi.run import open_run
from lbi.types import Task, Verdict


@dataclass
class JudgePlan:
    name: str
    suite: str
    gold_seeds: list[int]
    max_steps: int = 30
    limit: int | None = None  # the suite's first N tasks
    graded: bool = True  # also judge with 1-5 scores (run `<name>-graded`)
    out_dir: Path = Path("docs/evidence")
    page: str = "judges"
    command: str = ""


@dataclass
class JudgeResult:
    pairs: list[Pair]
    judges: list[str]
    settings: list[Score]
    per_criterion: list[Score]
    cost: dict[str, Any]
    wall_s: float


async def measure(
    cfg: Config, plan: JudgePlan, log: Callable[[str], None] = lambda _: None
) -> JudgeResult:
    started = time.perf_counter()
    probe = make_env(cfg.env, cfg)
    try:
        bench: list[Task] = probe.load_suite(plan.suite)[: plan.limit]
    finally:
        probe.close()
    factory = lambda: make_env(cfg.env, cfg)  # noqa: E731
    gold = await gold_data(cfg, plan.name, factory, bench, plan.gold_seeds, plan.max_steps)
    log(f"gold: {sum(t.success for t in gold)} successful of {len(gold)} reference episodes")
    failed = await failed_episodes(factory, bench, plan.gold_seeds[0])
    pairs = labelled_set(gold, failed)
    log("pairs: " + ", ".join(f"{k} {n}" for k, n in kind_counts(pairs).items()))
    verdicts, judges, cost = await _judge(cfg, f"{plan.name}-judged", pairs)
    graded: list[Verdict] = []
    if plan.graded:
        synth = cfg.synth.model_copy(update={"combine": "graded"})
        graded_cfg = cfg.model_copy(update={"synth": synth})
        graded, _, cost["graded"] = await _judge(graded_cfg, f"{plan.name}-graded", pairs)
    settings, per_criterion = scores(pairs, verdicts, judges, cfg.synth.max_window_chars, graded)
    return JudgeResult(pairs, judges, settings, per_criterion, cost, time.perf_counter() - started)


async def _judge(
    cfg: Config, run: str, pairs: list[Pair]
) -> tuple[list[Verdict], list[str], dict[str, Any]]:
    """Every pair through the filter's judging stage in the run `run`: the verdicts, the
    judges' names and what the judging cost per judged example (pair x judge)."""
    ctx = open_run(cfg, run)
    try:
        await judge_examples(ctx, [p.example for p in pairs])
        judges = [d.name for d in ctx.judges()]
        mine = {p.example.id for p in pairs}
        stored = ctx.store.all(Verdict)
        verdicts = [v for v in stored if v.example_id in mine]
        spent, judged = _spent_by(ctx.accountant, judges, stored)
        if not judged:  # a run from before the per-model books: its stage's books
            spent, judged = ctx.accountant.stage(STAGE), len(pairs) * len(judges)
        judged = max(1, judged)
        cost: dict[str, Any] = {
            "calls": spent.calls,
            "tokens_per_example": spent.tokens / judged,
            "usd_per_example": spent.cost_usd / judged,
            "model_s_per_example": spent.latency_s / judged,
            "model_s": spent.latency_s,
        }
    finally:
        ctx.save_accounting()
        await ctx.aclose()
    return verdicts, judges, cost


def _spent_by(
    accountant: Accountant, judges: list[str], stored: list[Verdict]
) -> tuple[Stats, int]:
    """What these judges' calls cost in this run, and how many examples they judged in it.
    The run is shared by every page made with the same `--name` (one judge's page, then the
    committee's), so the stage's books hold other judges' calls and other pages' pairs too."""
    spent = Stats()
    for judge in judges:
        book = accountant.models.get(judge)
        if book is not None:
            spent.add(book)
    names = set(judges)
    judged = sum(1 for v in stored if v.judge in names) if spent.calls else 0
    return spent, judged


def _share(counts: dict[str, int], false: bool = False) -> str:
    total = sum(counts.values())
    true = counts.get("true", 0)
    return f"{100 * ((total - true) if false else true) / max(1, total):.1f}%"


def _cost(c: dict[str, Any]) -> str:
    return (
        f"{c['calls']:.0f} judge calls; per judged example (pair × judge) "
        f"{c['tokens_per_example']:.0f} tokens, ${c['usd_per_example']:.5f}, "
        f"{c['model_s_per_example']:.1f} s of model time."
    )


def write(cfg: Config, plan: JudgePlan, result: JudgeResult) -> Path:
    counts = kind_counts(result.pairs)
    c = result.cost
    g = c.get("graded")
    lines = [
        f"# Judge accuracy: {', '.join(f'`{j}`' for j in result.judges)} on {cfg.env} / "
        f"{plan.suite}",
        "",
        f"Written by `lbi experiment judges`. Machine: {machine()}. Wall time of this command "
        f"{result.wall_s:.0f} s (gold rollouts and verdicts already stored are not redone); the "
        f"judges' calls took {c['model_s']:.0f} s of model time in all, over every run of the "
        "command that made them.",
        *(["", f"Command: `{plan.command}`"] if plan.command else []),
        "",
        "The labelled set is made from the environment's reference solutions (gold seeds "
        f"{plan.gold_seeds}): a *true* pair is a gold trajectory with the instruction it really "
        "carried out; the false pairs are the same trajectory with another task's instruction "
        "(`other-instruction`), cut halfway (`cut`, trajectories of two steps or more), with "
        "its instruction's numbers or quoted values changed (`changed-values`, where it has "
        "any), and a failed episode of the same task, the empty-answer floor "
        "(`failed`). Pairs: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in KINDS) + ".",
        "",
        "Each judge sees every pair through the filter's own stage (same prompt, batches of "
        f"{cfg.synth.judge_batch}, rules first). A setting *keeps* a pair when the filter with "
        "that setting would keep it: precision is the share of kept pairs that are true, "
        "recall the share of true pairs kept; 95% Wilson intervals. The rejected columns count "
        "the pairs of each kind a setting turned away (for `true`, lower is better).",
        "",
        "## Settings",
        "",
        f"The base rate: {_share(counts)} of the pairs are true. A setting that keeps every "
        f"pair has that precision and recall 100%; one that rejects every pair has accuracy "
        f"{_share(counts, false=True)}. Only a precision above the base rate, at a useful "
        "recall, shows a judge that tells true pairs from false ones.",
        "",
        *table(result.settings),
        "",
        "Graded rows: the committee judged again with a 1-5 score per criterion "
        "(`synth.combine: graded`), kept when every criterion's mean score reaches the "
        f"threshold (`synth.grade_threshold`, default {cfg.synth.grade_threshold:g})."
        if plan.graded
        else "Graded judging was not run (`--no-graded`).",
        "",
        f"The default is `synth.combine: {cfg.synth.combine}` over every configured model: the "
        "paper's committee is unanimous (`all`), so a single false accept by any judge does not "
        "keep an example; with one judge `all`, `majority` and that judge are the same setting. "
        "Whether another setting should become the default is what the table above answers for "
        "this environment and these judges.",
        "",
        "## Each criterion alone (behind the rules)",
        "",
        *table(result.per_criterion),
        "",
        "## Cost",
        "",
        f"Yes/no verdicts: {_cost(c)}" + (f" Graded verdicts: {_cost(g)}" if g else ""),
        "",
    ]
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.out_dir / f"{plan.page}.md"
    path.write_text("\n".join(lines))
    return path


async def run_judges(
    cfg: Config, plan: JudgePlan, log: Callable[[str], None] = lambda _: None
) -> tuple[Path, dict[str, Any]]:
    result = await measure(cfg, plan, log)
    path = write(cfg, plan, result)
    figures = {s.setting: round(100 * s.accuracy[0], 1) for s in result.settings}
    return path, figures
