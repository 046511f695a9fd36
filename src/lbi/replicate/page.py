"""The evidence page: the paper's tables as Markdown, with paired CIs and detectable sizes."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lbi.eval.stats import FLOOR_PREFIX, StatsError, compare, floor_scores, summarize
from lbi.types import EvalResult

TABLES = {
    "Table 2 — in-context (none / RAG over docs / distillation / Reflexion / LATS / "
    "Learn-by-interact)": ["docs", "distill", "reflexion", "lats", "both"],
    "Table 4 — retrieval (observation / model / both)": ["observation", "model", "both"],
    "Backward-construction ablation (whole-trajectory labels only vs windows)": [
        "whole-only", "both"],
    "Table 6 — tasks from docs vs from exploration only": ["both", "explore-both"],
    "Gold ceiling and stage swap (gold in one stage at a time)": [
        "both", "swap-tasks", "swap-rollouts", "swap-labels", "swap-judge", "gold"],
    "Table 3 — training (base vs LoRA)": ["lora-lbi", "lora-gold"],
}  # fmt: skip


@dataclass
class Evidence:
    title: str
    model: str
    env: str
    suite: str
    seeds: int
    gold_seeds: list[int]
    table1: dict[str, dict[str, Any]]
    example_counts: dict[str, int]
    results: list[EvalResult]
    lora_skipped: str | None
    gold_success: float | None
    arms: list[str] | None = None  # the arms run (None: all)
    command: str = ""  # the command line that wrote the page
    notes: list[str] = field(default_factory=list)  # sentences under the introduction
    training: list[str] = field(default_factory=list)  # one line per LoRA arm trained


def machine() -> str:
    """The machine a page was written on, its load and the time."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load:.1f} at the end; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC"
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def comparison_rows(results: list[EvalResult], arms: list[str]) -> list[str]:
    rows = [
        "| arm | success % | Δ vs none (pp) | 95% CI (pp) | smallest detectable (pp) | detected |",
        "|---|---|---|---|---|---|",
    ]
    have = {r.variant for r in results}
    base = [r for r in results if r.variant == "none"]
    if base:
        rows.append(f"| none | {_pct(sum(r.success for r in base) / len(base))} | | | | |")
    for arm in arms:
        if arm not in have or arm == "none":
            continue
        try:
            c = compare(results, arm, "none")
        except StatsError as e:
            rows.append(f"| {arm} | | {e} | | | |")
            continue
        mde = "—" if c.mde is None else f"{100 * c.mde:.1f}"
        found = "yes" if c.ci_low > 0 or c.ci_high < 0 else "no"
        rows.append(
            f"| {arm} | {_pct(c.variant_rate)} | {100 * c.diff:+.1f} | "
            f"[{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}] | {mde} | {found} |"
        )
    return rows


TABLE2_NOTE = (
    "Cost is the mean per task (episode) of the model's spend at the configured prices, its "
    "calls and its tokens; Reflexion and LATS pay theirs at every task, lbi's arms once ahead "
    "(synthesis, Table 1). `*`: the 95% CI excludes 0."
)


def _delta(results: list[EvalResult], arm: str, base: str) -> str:
    """Δ pp [95% CI] of `arm` against `base`, paired per task; "—" where they share no pair."""
    if arm == base:
        return ""
    try:
        c = compare(results, arm, base)
    except StatsError:
        return "—"
    mark = " *" if c.ci_low > 0 or c.ci_high < 0 else ""
    return f"{100 * c.diff:+.1f} [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]{mark}"


def table2_rows(results: list[EvalResult], arms: list[str]) -> list[str]:
    """Table 2 with what each arm spent per task beside its success (the paper has no cost
    column), and paired differences against `none` and against lbi's `both`."""
    rows = [
        "| arm | success % | $ / task | calls / task | tokens / task | Δ vs none pp [95% CI] | "
        "Δ vs both pp [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm in ["none", *[a for a in arms if a != "none"]]:
        rs = [r for r in results if r.variant == arm]
        if not rs:
            continue
        n = len(rs)
        tokens = sum(r.prompt_tokens + r.completion_tokens for r in rs) / n
        rows.append(
            f"| {arm} | {_pct(sum(r.success for r in rs) / n)} | "
            f"{sum(r.cost_usd for r in rs) / n:.4f} | {sum(r.calls for r in rs) / n:.1f} | "
            f"{tokens:,.0f} | {_delta(results, arm, 'none')} | {_delta(results, arm, 'both')} |"
        )
    return rows


def tries_line(results: list[EvalResult]) -> str | None:
    """pass@1 (the first try) next to the final success of the arms that try several times."""
    from lbi.eval.trials import trial_summaries

    parts = [
        f"{t.variant} pass@1 {_pct(t.pass_at_1)}%, final {_pct(t.final)}% "
        f"({t.mean_trials:.1f} tries, {t.mean_calls:.1f} calls per task)"
        for t in trial_summaries(results)
    ]
    return "Several tries per task: " + "; ".join(parts) + "." if parts else None


SWAP_ARMS = ("both", "gold", "swap-tasks", "swap-rollouts", "swap-labels", "swap-judge")


def swap_gap(results: list[EvalResult]) -> str:
    """Which single gold stage recovers most of the lbi -> gold gap, in episodes and shares; a gap
    under two episodes is said to be one the shares cannot be read from."""
    wins = {
        a: (sum(r.success for r in rs), len(rs))
        for a in SWAP_ARMS
        if (rs := [r for r in results if r.variant == a])
    }
    if "both" not in wins or "gold" not in wins:
        return "The stage swap needs both lbi data and gold data."

    def said(a: str) -> str:
        return f"{wins[a][0]}/{wins[a][1]}"

    rate = {a: k / n for a, (k, n) in wins.items()}
    gap = rate["gold"] - rate["both"]
    head = f"Gap: gold {said('gold')} vs lbi {said('both')} ({100 * gap:+.1f} pp)"
    if gap <= 0:
        return f"{head}: no gap to recover."
    share = {a: (rate[a] - rate["both"]) / gap for a in rate if a.startswith("swap-")}
    if not share:
        return f"{head}; no swap arm ran."
    best = max(sorted(share), key=lambda a: share[a])
    parts = ", ".join(f"{a} {said(a)} ({100 * s:.0f}%)" for a, s in sorted(share.items()))
    line = f"{head}. Share of it recovered by one gold stage: {parts}; most: **{best}**."
    if gap * wins["gold"][1] < 2:
        line += (
            " The gap is under 2 episodes, so these shares rest on single episodes: they cannot"
            " rank the stages (a share over 100% means the swap arm beat gold)."
        )
    return line


def floor_wins(results: list[EvalResult]) -> str | None:
    """How many of each arm's wins are on episodes (task, seed) that a floor (no model) also
    solves: a win there says nothing of the arm's data."""
    floored = {
        (r.task_id, r.seed) for r in results if r.variant.startswith(FLOOR_PREFIX) and r.success
    }
    wins: dict[str, list[EvalResult]] = {}
    for r in results:
        if r.success and not r.variant.startswith(FLOOR_PREFIX):
            wins.setdefault(r.variant, []).append(r)
    if not floored or not wins:
        return None
    parts = [
        f"{arm} {sum((r.task_id, r.seed) in floored for r in rs)} of {len(rs)}"
        for arm, rs in sorted(wins.items())
    ]
    return "Wins on episodes a floor also solves: " + ", ".join(parts) + "."


def write_page(ev: Evidence, out_dir: Path, page: str) -> Path:
    from lbi.eval.report import success_chart

    out_dir.mkdir(parents=True, exist_ok=True)
    uniform = [r.model_copy(update={"model": ev.model}) for r in ev.results]
    floors = floor_scores(uniform)
    chart = success_chart(summarize(uniform), floors, out_dir / f"{page}.png")
    lines = [
        f"# Evidence: {ev.title}",
        "",
        f"Written by `lbi experiment paper` (model `{ev.model}`, env `{ev.env}`, suite "
        f"`{ev.suite}`, {ev.seeds} evaluation seed(s); gold data from seeds {ev.gold_seeds}, "
        "kept out of evaluation). Differences are paired per task against `none`; the CI is a "
        "t-interval over per-task differences; *smallest detectable* is the difference a paired "
        "test at α=0.05 would find with power 0.8 at this many tasks; *detected* means the CI "
        "excludes 0.",
        *(["", f"Command: `{ev.command}`"] if ev.command else []),
        *(line for note in ev.notes for line in ("", note)),
        "",
        "## Table 1 — data",
        "",
        "| synthesis | docs | tasks | trajectories | examples | kept |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in ev.table1.items():
        lines.append(
            f"| {name} | {s.get('docs')} | {s.get('tasks')} | {s.get('trajectories')} | "
            f"{s.get('raw_examples')} | {s.get('kept_examples')} |"
        )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(ev.example_counts.items()))
    gold = "—" if ev.gold_success is None else _pct(ev.gold_success)
    lines += ["", f"Examples per arm: {counts}. Gold policy success on its own tasks: {gold}%."]
    ran = set(ev.arms) if ev.arms is not None else None
    for title, arms in TABLES.items():
        lines += ["", f"## {title}", ""]
        # `both` (lbi's data) is Table 2's own arm; elsewhere it is only the row to compare with.
        own = set(arms) - (set() if title.startswith("Table 2") else {"both"})
        if ran is not None and not ran & own:
            lines.append("Not run (`--arms` left these arms out).")
            continue
        if title.startswith("Table 3") and ev.lora_skipped:
            lines.append(f"Skipped: {ev.lora_skipped}.")
            continue
        if title.startswith("Table 2"):
            lines += [*table2_rows(uniform, arms), "", TABLE2_NOTE]
            if (tries := tries_line(uniform)) is not None:
                lines += ["", tries]
        else:
            lines += comparison_rows(uniform, arms)
        if title.startswith("Table 3") and ev.training:
            lines += ["", "Training:", "", *(f"- {t}" for t in ev.training)]
        if title.startswith("Gold"):
            lines += ["", swap_gap(uniform)]
    if floors:
        lines += ["", "Floors (no model): " + ", ".join(
            f"{f.policy} {_pct(f.success_rate)}%" for f in floors)]  # fmt: skip
        if (line := floor_wins(uniform)) is not None:
            lines.append(line)
    lines += ["", f"![success by arm]({chart.name})", ""]
    path = out_dir / f"{page}.md"
    path.write_text("\n".join(lines))
    (out_dir / f"{page}.json").write_text(
        json.dumps([r.model_dump() for r in ev.results], indent=1, sort_keys=True)
    )
    return path
