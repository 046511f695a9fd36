"""Write an evaluation's report: report.md, report.json, success.png and a one-file report.html.

The report is the only place people read results, so it shows each number with its interval,
the delta against `none` with its interval and p-value, what trivial policies score (the floor),
tasks whose verdict flips between seeds, the contamination check and the sampling temperature.
Everything is computed by `lbi.eval.stats` / `lbi.eval.contamination`; this module only lays out.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import BaseModel, Field

from lbi.eval.contamination import ContaminationReport
from lbi.eval.stats import (
    BASELINE,
    FLOOR_PREFIX,
    Comparison,
    FloorScore,
    VariantSummary,
    by_variant,
    compare_all,
    flips,
    floor_scores,
    summarize,
)
from lbi.eval.trials import TrialSummary, trial_summaries
from lbi.types import EvalResult

TEMPLATES = Path(__file__).parent / "templates"
# Where `lbi view RUN` serves by default (lbi.view.DEFAULT_PORT); the viewer rewrites these
# links to its own address when it serves the report.
VIEWER_URL = "http://127.0.0.1:8765"


class ReportMeta(BaseModel):
    """What was run; the temperature matters because pass^k and flips mean little at T=0."""

    run_name: str
    env: str
    suite: str
    model: str
    temperature: float
    seeds: int
    max_steps: int | None = None  # the step limit, and why it is that (harness.step_limit)
    max_steps_from: str = ""
    date: str = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    dataset: dict[str, Any] = Field(default_factory=dict)  # e.g. examples, tasks, acceptance rate
    # Episodes stored as failures (no result): (count, "kind: message") per kind of failure.
    failures: list[tuple[int, str]] = Field(default_factory=list)


class ReportPaths(BaseModel):
    folder: Path
    markdown: Path
    report_json: Path
    chart: Path
    html: Path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def _table_rows(
    summaries: Sequence[VariantSummary], comparisons: Sequence[Comparison]
) -> list[dict[str, str]]:
    by_name = {c.variant: c for c in comparisons}
    rows = []
    for s in summaries:
        c = by_name.get(s.variant)
        delta = (
            f"{_pp(c.diff)} [{_pp(c.ci_low)}, {_pp(c.ci_high)}] p={_p(c.p_value, 2)}" if c else ""
        )
        rows.append(
            {
                "variant": s.variant,
                "n": f"{s.n_tasks}×{s.n_seeds}",
                "success": f"{_pct(s.success_rate)} [{_pct(s.ci_low)}, {_pct(s.ci_high)}]",
                "pass_k": " / ".join(f"{v:.2f}" for _, v in sorted(s.pass_k.items())),
                "delta": "—" if s.variant == BASELINE else delta,
                "steps": f"{s.mean_steps:.1f}",
                "calls": f"{s.mean_calls:.1f}",
                "tokens": f"{s.mean_tokens:,.0f}",
                "latency": f"{s.mean_latency_s:.2f}",
                "cost": f"{s.mean_cost_usd:.4f}",
                "floor": "floor" if s.variant.startswith(FLOOR_PREFIX) else "",
            }
        )
    return rows


def _trial_rows(summaries: Sequence[TrialSummary]) -> list[dict[str, str]]:
    return [
        {
            "variant": t.variant,
            "episodes": str(t.episodes),
            "pass1": _pct(t.pass_at_1),
            "final": _pct(t.final),
            "trials": f"{t.mean_trials:.1f}",
            "reflections": f"{t.mean_reflections:.1f}",
            "nodes": f"{t.mean_nodes:.1f}" if t.mean_nodes else "—",
            "calls": f"{t.mean_calls:.1f}",
            "tokens": f"{t.mean_tokens:,.0f}",
            "cost": f"{t.mean_cost_usd:.4f}",
        }
        for t in summaries
    ]


def _p(p: float, digits: int = 3) -> str:
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def _flip_rows(results: Sequence[EvalResult]) -> list[dict[str, str]]:
    """One line per variant ("task ✓✗✓, ..."): 7 variants x 23 tasks would be 100+ lines otherwise."""
    grouped: dict[str, list[str]] = {}
    for f in flips(results):
        marks = "".join("✓" if ok else "✗" for ok in f.by_seed.values())
        grouped.setdefault(f.variant, []).append(f"{f.task_name or f.task_id} {marks}")
    n_tasks = {v: len({r.task_id for r in rs}) for v, rs in by_variant(results).items()}
    return [
        {"variant": v, "count": f"{len(items)}/{n_tasks[v]}", "tasks": ", ".join(items)}
        for v, items in grouped.items()
    ]


def _comparison_rows(comparisons: Sequence[Comparison]) -> list[dict[str, str]]:
    return [
        {
            "variant": c.variant,
            "pairs": f"{c.n_pairs} ({c.n_tasks} tasks)",
            "rates": f"{_pct(c.variant_rate)} vs {_pct(c.baseline_rate)}",
            "delta": f"{_pp(c.diff)} [{_pp(c.ci_low)}, {_pp(c.ci_high)}]",
            "p": _p(c.p_value),
            "signs": f"{c.n_better}+ / {c.n_worse}−",
            "discordant": str(c.discordant),
            "mde": f"±{100 * c.mde:.1f}" if c.mde is not None else "n/a",
        }
        for c in comparisons
    ]


def _grid(results: Sequence[EvalResult], floor: Sequence[FloorScore]) -> dict[str, Any]:
    """Variant x task verdicts; tasks in the order the suite ran them, numbered for short headers."""
    order: dict[str, str] = {}
    for r in results:
        order.setdefault(r.task_id, r.task_name or r.task_id)
    floor_solved: dict[str, list[str]] = {t: [] for t in order}
    for f in floor:
        for t in f.solved:
            floor_solved.setdefault(t, []).append(f.policy)
    tasks = [
        {"index": i + 1, "id": t, "name": name, "floor": floor_solved.get(t, [])}
        for i, (t, name) in enumerate(order.items())
    ]
    rows = []
    for variant, rs in by_variant(results).items():
        cell: dict[str, list[bool]] = {}
        for r in sorted(rs, key=lambda r: r.seed):
            cell.setdefault(r.task_id, []).append(r.success)
        cells = []
        for t in order:
            got = cell.get(t, [])
            kind = "missing" if not got else "all" if all(got) else "some" if any(got) else "none"
            cells.append(
                {
                    "text": f"{sum(got)}/{len(got)}" if got else "·",
                    "kind": kind,
                    "seeds": "".join("✓" if g else "✗" for g in got),
                }
            )
        rows.append({"variant": variant, "cells": cells, "floor": variant.startswith(FLOOR_PREFIX)})
    return {"tasks": tasks, "rows": rows}


def success_chart(
    summaries: Sequence[VariantSummary], floor: Sequence[FloorScore], path: Path
) -> Path:
    """Bars of success per variant with Wilson error bars; each floor policy a dashed line."""
    bars = [s for s in summaries if not s.variant.startswith(FLOOR_PREFIX)]
    fig = Figure(figsize=(max(5.0, 0.9 * len(bars) + 2), 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = range(len(bars))
    heights = [100 * s.success_rate for s in bars]
    # Clamped at 0: the interval can sit a rounding error past the rate at 0% or 100%.
    err = [
        [max(0.0, h - 100 * s.ci_low) for h, s in zip(heights, bars, strict=True)],
        [max(0.0, 100 * s.ci_high - h) for h, s in zip(heights, bars, strict=True)],
    ]
    colors = ["#7f7f7f" if s.variant == BASELINE else "#1f77b4" for s in bars]
    ax.bar(xs, heights, yerr=err, capsize=4, color=colors, edgecolor="black", linewidth=0.5)
    for x, h in zip(xs, heights, strict=True):
        ax.text(x, h / 2, f"{h:.0f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xticks(list(xs), [s.variant for s in bars], rotation=20, ha="right")
    for i, f in enumerate(floor):
        ax.axhline(
            100 * f.success_rate,
            linestyle="--",
            color=["#d62728", "#ff7f0e", "#9467bd"][i % 3],
            linewidth=1.2,
            label=f"{f.policy} {_pct(f.success_rate)}%",
        )
    if floor:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.set_ylim(0, 100)
    ax.set_ylabel("success % (95% Wilson CI)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _context(
    results: Sequence[EvalResult],
    meta: ReportMeta,
    summaries: Sequence[VariantSummary],
    comparisons: Sequence[Comparison],
    floor: Sequence[FloorScore],
    contamination: ContaminationReport | None,
) -> dict[str, Any]:
    names = {r.task_id: r.task_name or r.task_id for r in results}
    max_k = max((max(s.pass_k) for s in summaries if s.pass_k), default=1)
    return {
        "meta": meta,
        "rows": _table_rows(summaries, comparisons),
        "comparisons": _comparison_rows(comparisons),
        "trials": _trial_rows(trial_summaries(results)),
        "baseline": BASELINE,
        "max_k": max_k,
        "floor": [
            {
                "policy": f.policy,
                "rate": _pct(f.success_rate),
                "solved": [names.get(t, t) for t in f.solved],
            }
            for f in floor
        ],
        "flips": _flip_rows(results),
        "contamination": contamination.line() if contamination else "not checked",
        "grid": _grid(results, floor),
        "viewer": VIEWER_URL,
    }


def write_report(
    out_dir: str | Path,
    results: Sequence[EvalResult],
    meta: ReportMeta,
    summaries: Sequence[VariantSummary] | None = None,
    comparisons: Sequence[Comparison] | None = None,
    floor: Sequence[FloorScore] | None = None,
    contamination: ContaminationReport | None = None,
) -> ReportPaths:
    """Write the four report files into out_dir (created) and return their paths. Anything not
    given is computed from results, so `write_report(dir, results, meta)` is a complete call."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    summaries = list(summaries) if summaries is not None else summarize(results)
    comparisons = list(comparisons) if comparisons is not None else compare_all(results)
    floor = list(floor) if floor is not None else floor_scores(results)
    paths = ReportPaths(
        folder=folder,
        markdown=folder / "report.md",
        report_json=folder / "report.json",
        chart=folder / "success.png",
        html=folder / "report.html",
    )
    success_chart(summaries, floor, paths.chart)
    ctx = _context(results, meta, summaries, comparisons, floor, contamination)
    ctx["chart_b64"] = base64.b64encode(paths.chart.read_bytes()).decode("ascii")
    md_env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    html_env = Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=True
    )
    paths.markdown.write_text(md_env.get_template("report.md.j2").render(ctx), encoding="utf-8")
    paths.html.write_text(html_env.get_template("report.html.j2").render(ctx), encoding="utf-8")
    payload = {
        "meta": meta.model_dump(),
        "summaries": [s.model_dump() for s in summaries],
        "comparisons": [c.model_dump() for c in comparisons],
        "floor": [f.model_dump() for f in floor],
        "flips": [f.model_dump() for f in flips(results)],
        "trials": [t.model_dump() for t in trial_summaries(results)],
        "contamination": contamination.model_dump() if contamination else None,
        "results": [r.model_dump() for r in results],
        "files": {
            "markdown": paths.markdown.name,
            "chart": paths.chart.name,
            "html": paths.html.name,
        },
    }
    paths.report_json.write_text(
        json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return paths
