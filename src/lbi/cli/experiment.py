"""`lbi experiment paper`: the paper's tables for one model, environment and suite."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from lbi.cli.app import (
    ConfigOpt,
    EnvOpt,
    ModelOpt,
    SetOpt,
    app,
    arun,
    cli_config,
    err,
    friendly,
    out,
)
from lbi.config import Config, ConfigError
from lbi.types import Task

experiment_app = typer.Typer(
    help="Experiments that reproduce the paper's tables.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")


def _suite(cfg: Config, suite: str | None) -> tuple[str, list[Task], bool]:
    """The suite (by default the environment's first), its tasks, and whether a seed changes
    the environment's tasks."""
    from lbi.envs.base import make_env, seeds_vary

    probe = make_env(cfg.env, cfg)
    try:
        suite = suite or (probe.suites() or [""])[0]
        if not suite:
            raise ConfigError(f"environment {cfg.env} has no benchmark suites")
        return suite, probe.load_suite(suite), seeds_vary(probe)
    finally:
        probe.close()


@experiment_app.command("paper")
@friendly
def paper(
    env: EnvOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    suite: Annotated[
        str | None, typer.Option(help="Benchmark suite (default: the env's first).")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Evaluation seeds per task (0, 1, ...).")] = 1,
    gold_seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds for gold data; kept out of evaluation.")
    ] = "1000,1001",
    max_steps: Annotated[
        int | None,
        typer.Option(
            help="Step limit per episode (default: eval.max_steps, else the suite's longest "
            "reference + 4, at least 8)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name prefix (default: paper-ENV-SUITE).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the page and plot.")] = Path(
        "docs/evidence"
    ),
    page: Annotated[str | None, typer.Option(help="Page name (default: the run name).")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Stop when this much is spent.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(help="Stop at this many tokens.")] = None,
    arms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated arms to run, e.g. none,both,gold,lora-gold (default: all)."
        ),
    ] = None,
    train: Annotated[bool, typer.Option(help="Table 3: LoRA where the model is trainable.")] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and call counts only.")
    ] = False,
) -> None:
    """Tables 1, 2, 3, 4, 6, the backward ablation and the gold stage swap, as one page."""
    from lbi.replicate.paper import (
        PaperPlan,
        check_arms,
        estimate,
        lora_skip_reason,
        run_paper,
    )

    extra = [*(set_ or [])]
    if budget_usd is not None:
        extra.append(f"budget.max_cost_usd={budget_usd}")
    if budget_tokens is not None:
        extra.append(f"budget.max_tokens={budget_tokens}")
    cfg = cli_config(config, extra, model, env)
    from lbi.envs.base import make_env
    from lbi.envs.preflight import preflight
    from lbi.eval.harness import step_limit
    from lbi.pipeline.preflight import synth_starts

    suite, bench, varies = _suite(cfg, suite)
    n_tasks = len(bench)
    steps, steps_from = step_limit(max_steps or cfg.eval.max_steps, bench)
    if not dry_run:  # the environment's failures first, in one line, before any call or folder
        preflight(lambda: make_env(cfg.env, cfg), lambda env: [*bench, *synth_starts(cfg, env)])
    evals = set(range(seeds))
    golds = [int(s) for s in gold_seeds.split(",") if s.strip()]
    if evals & set(golds):
        raise ConfigError(f"gold seeds {sorted(evals & set(golds))} are also evaluation seeds")
    run = name or f"paper-{cfg.env}-{suite}".replace(":", "-").replace("/", "-")
    plan = PaperPlan(
        name=run,
        suite=suite,
        seeds=seeds,
        gold_seeds=golds,
        max_steps=steps,
        train=train,
        out_dir=out_dir,
        page=page or run,
        command=shlex.join(["lbi", *sys.argv[1:]]),
        only=check_arms([a.strip() for a in arms.split(",") if a.strip()]) if arms else None,
    )
    skip = lora_skip_reason(cfg, plan)
    est = estimate(plan, n_tasks, lora=skip is None, lora_gold=varies, eval_cfg=cfg.eval)
    total = sum(est["eval_calls_max"].values())
    out.print(
        f"plan: {run} · model {cfg.model} · env {cfg.env} · suite {suite} ({n_tasks} tasks) x "
        f"{seeds} seeds · arms {', '.join(est['eval_calls_max'])}"
    )
    out.print(f"evaluation: at most {total} model calls ({est['episodes_per_arm']} episodes/arm)")
    gold = "and on gold data" if varies else "(not on gold data: seeds do not change a task here)"
    out.print(f"Table 3: {'skipped: ' + skip if skip else 'LoRA on lbi data ' + gold}")
    out.print(f"step limit: {steps} ({steps_from})")
    if dry_run:
        return
    path = arun(run_paper(cfg, plan, lambda s: err.print(s)))
    out.print(f"page: {path}")


@experiment_app.command("judges")
@friendly
def judges(
    env: EnvOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    suite: Annotated[
        str | None,
        typer.Option(help="Suite whose gold makes the pairs (default: the env's first)."),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judges",
            help="Comma-separated judge models (default: synth.judges, else --model).",
        ),
    ] = None,
    gold_seeds: Annotated[str, typer.Option(help="Comma-separated seeds for gold.")] = "1000",
    limit: Annotated[int | None, typer.Option(help="Only the suite's first N tasks.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name prefix (default: judges-ENV-SUITE).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the page.")] = Path(
        "docs/evidence"
    ),
    page: Annotated[str | None, typer.Option(help="Page name (default: the run name).")] = None,
) -> None:
    """Judge accuracy against gold: true pairs and four kinds of false ones, judged by the
    committee; precision, recall and accuracy per setting and criterion, with CIs."""
    from lbi.envs.base import make_env
    from lbi.envs.preflight import preflight
    from lbi.replicate.judge_page import JudgePlan, run_judges

    extra = [*(set_ or [])]
    if judge:
        names = [j.strip() for j in judge.split(",") if j.strip()]
        extra.append("synth.judges=" + json.dumps(names))
    cfg = cli_config(config, extra, model, env)
    suite, bench, _ = _suite(cfg, suite)
    bench = bench[:limit]
    preflight(lambda: make_env(cfg.env, cfg), bench)
    run = name or f"judges-{cfg.env}-{suite}".replace(":", "-").replace("/", "-")
    plan = JudgePlan(
        name=run,
        suite=suite,
        gold_seeds=[int(s) for s in gold_seeds.split(",") if s.strip()],
        limit=limit,
        out_dir=out_dir,
        page=page or run,
        command=shlex.join(["lbi", *sys.argv[1:]]),
    )
    path, figures = arun(run_judges(cfg, plan, lambda s: err.print(s)))
    for setting, accuracy in figures.items():
        out.print(f"{setting}: accuracy {accuracy}%")
    out.print(f"page: {path}")
