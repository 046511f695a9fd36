"""Retrieval and evaluation commands: index build/query, eval, report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from lbi.cli.app import (
    ConcurrencyOpt,
    ConfigOpt,
    DocsOpt,
    DryRunOpt,
    EnvOpt,
    LimitOpt,
    ModelOpt,
    RunOpt,
    SetOpt,
    UrlOpt,
    app,
    arun,
    cli_config,
    err,
    friendly,
    out,
    start_run,
)
from lbi.config import ConfigError
from lbi.run import existing_run

if TYPE_CHECKING:
    from lbi.run import RunContext
    from lbi.types import EvalResult

index_app = typer.Typer(help="Retrieval index over a run's dataset.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("build")
@friendly
def index_build(
    run: Annotated[str, typer.Argument(help="Run name.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Build (or extend) the run's indexes: kept examples, doc chunks, raw trajectories."""
    from lbi.pipeline.indexes import KINDS, build_index, index_dir

    ctx = existing_run(run, config, set_)
    for kind in KINDS:
        index = build_index(ctx, kind)
        out.print(f"{kind}: {len(index)} records -> {index_dir(ctx, kind)}")
    ctx.store.close()


@index_app.command("query")
@friendly
def index_query(
    run: Annotated[str, typer.Argument(help="Run name.")],
    text: Annotated[str, typer.Argument(help="An observation or a search query.")],
    kind: Annotated[str, typer.Option(help="examples | docs | distill")] = "examples",
    k: Annotated[int, typer.Option(help="How many hits per search.")] = 5,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Search a run's index both ways: by observation (BM25/exact) and densely (as a model query)."""
    from lbi.pipeline.indexes import build_index

    ctx = existing_run(run, config, set_)
    index = build_index(ctx, kind)
    for how, hits in (
        ("observation", index.search_lexical(text, k)),
        ("dense", index.search_dense(text, k)),
    ):
        out.print(f"[bold]{how}[/]")
        for rid, score in hits:
            rec = index.get(rid)
            label = str(getattr(rec, "instruction", None) or getattr(rec, "title", ""))
            out.print(f"  {score:8.3f}  {rid}  {label[:100]}", highlight=False)
    ctx.store.close()


@app.command("eval")
@friendly
def eval_(
    env: EnvOpt = None,
    model: ModelOpt = None,
    run: RunOpt = None,
    url: UrlOpt = None,
    docs: DocsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help="Benchmark suite: a shipped one's name, or a file of tasks (.jsonl/.yaml, "
            "docs/environments/custom.md) (default: the environment's first)."
        ),
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: none,docs,instruction,observation,model,both,distill, and the "
            "inference-time baselines reflexion,lats (eval.reflexion.*, eval.lats.*) "
            "(default: every retrieval variant the run supports; the baselines only when named)."
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Seeds per task; above 1 the agent samples at eval.temperature "
            "(default: the config's eval.seeds)."
        ),
    ] = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Evaluate retrieval variants on a benchmark suite; write the report (md, json, png, html)."""
    from lbi.agents.baselines import BASELINES, check_baselines
    from lbi.agents.retrieval import INDEX_FOR, VARIANTS
    from lbi.envs.base import make_env
    from lbi.envs.preflight import preflight
    from lbi.envs.suite_file import with_suite
    from lbi.eval.harness import (
        EvalPlan,
        contamination,
        evaluate,
        report_meta,
        step_limit,
        supported_variants,
    )
    from lbi.eval.report import ReportMeta, write_report
    from lbi.pipeline.indexes import build_index

    cfg = cli_config(config, set_, model, env, url=url, docs=docs)
    if concurrency:
        cfg = cfg.model_copy(
            update={"door": cfg.door.model_copy(update={"concurrency": concurrency})}
        )
    # Inputs first (suite, variants), so a mistyped one leaves no run folder behind.
    asked = [v.strip() for v in variants.split(",")] if variants else []
    known = [*VARIANTS, *BASELINES]
    bad = [v for v in asked if v not in known]
    if bad:
        raise ConfigError(f"unknown variant(s) {', '.join(bad)}; use {', '.join(known)}")
    make = with_suite(lambda: make_env(cfg.env, cfg), suite)
    probe = make()
    try:
        suite = suite or (probe.suites() or [""])[0]
        if not suite:
            raise ConfigError(
                f"environment {cfg.env} has no benchmark suites; bring one: --suite FILE.jsonl"
            )
        bench = probe.load_suite(suite)[:limit]
        check_baselines(probe, asked)
    finally:
        probe.close()
    max_steps, max_steps_from = step_limit(cfg.eval.max_steps, bench)
    if dry_run:
        from lbi.pipeline.estimate import eval_estimate
        from lbi.run import check_inputs

        check_inputs(cfg)
        est = eval_estimate(
            cfg, suite, len(bench), asked or list(VARIANTS), seeds or cfg.eval.seeds, max_steps
        )
        out.print(est.line(), soft_wrap=True, highlight=False)
        return
    preflight(make, bench)  # the environment's failures, before the run folder and any call
    ctx = start_run(cfg, run)
    chosen = asked or supported_variants(ctx)
    plan = EvalPlan(
        suite=suite,
        variants=chosen,
        seeds=seeds or cfg.eval.seeds,
        temperature=cfg.eval.temperature,
        max_steps=max_steps,
        limit=limit,
        max_steps_from=max_steps_from,
    )
    out.print(f"step limit: {max_steps} ({max_steps_from})")
    report = contamination(ctx, bench)
    out.print(
        f"contamination: max {report.max_overlap:.0%} {report.n}-gram overlap between {suite} "
        f"instructions and the dataset ({report.n_exact} verbatim)"
    )
    indexes = {
        kind: build_index(ctx, kind) for kind in {INDEX_FOR[v] for v in chosen if v in INDEX_FOR}
    }
    for v in chosen:
        if v in INDEX_FOR and not len(indexes[INDEX_FOR[v]]):
            err.print(
                f"[yellow]warning:[/] variant {v} has nothing to retrieve (the run's "
                f"{INDEX_FOR[v]} index is empty): it will behave like `none`"
            )

    async def go():  # type: ignore[no-untyped-def]
        try:
            results = await evaluate(ctx, plan, indexes)
        except Exception:
            await ctx.aclose()  # saves the spend; the doors' connections close on this loop
            raise
        except BaseException:
            ctx.save_accounting()
            raise
        ctx.save_accounting()
        return results

    results = arun(go())
    paths = write_report(
        ctx.dir / "report", results, ReportMeta(**report_meta(ctx, plan)), contamination=report
    )
    out.print(paths.markdown.read_text(), markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {paths.html}")
    arun(ctx.aclose())


@app.command()
@friendly
def report(
    run: Annotated[str, typer.Argument(help="Run name.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write the run's evaluation report as one HTML page (plus md, json, png) and print its path."""
    from lbi.eval.report import ReportMeta, write_report
    from lbi.types import EvalResult

    ctx = existing_run(run, config, set_)
    results = ctx.store.all(EvalResult)
    if not results:
        raise ConfigError(
            f"run {run!r} has no evaluation results yet; run `lbi eval --run {run}` first"
        )
    suite = results[-1].suite
    results = [r for r in results if r.suite == suite and r.model == results[-1].model]
    seeds = len({r.seed for r in results})
    meta = (
        json.loads((ctx.dir / "report" / "report.json").read_text()).get("meta", {})
        if (ctx.dir / "report" / "report.json").is_file()
        else {}
    )
    meta = meta or {
        "run_name": run,
        "env": ctx.config.env,
        "suite": suite,
        "model": results[-1].model,
        "temperature": ctx.config.eval.temperature if seeds > 1 else 0.0,
        "seeds": seeds,
    }
    from lbi.pipeline.synth import failures_by_stage

    meta["failures"] = failures_by_stage(ctx).get("eval", [])  # as they stand now
    # The overlap between the evaluated benchmark tasks (stored by `lbi eval`) and the dataset.
    from lbi.eval.contamination import overlap_report
    from lbi.pipeline.synth import current_examples
    from lbi.types import Example, Task

    evaluated = {r.task_id for r in results}
    tasks = ctx.store.all(Task)
    bench = [t for t in tasks if t.origin == "benchmark" and t.id in evaluated]
    data: list[Example | Task] = [*current_examples(ctx)]
    data += [t for t in tasks if t.origin != "benchmark"]
    paths = write_report(
        ctx.dir / "report", results, ReportMeta(**meta), contamination=overlap_report(bench, data)
    )
    _say_missing(ctx, run, ctx.store.all(EvalResult))
    ctx.store.close()
    print(paths.html)


def _say_missing(ctx: RunContext, run: str, results: list[EvalResult]) -> None:
    """An interrupted eval's report is partial: say which episodes it lacks and how to finish."""
    from lbi.eval.harness import missing_episodes

    missing = missing_episodes(ctx, results)
    if not missing:
        return
    plan = ctx.store.get_meta("eval_plan")
    n = sum(len(m) for m in missing.values())
    err.print(
        f"[yellow]incomplete:[/] {n} of {len(plan['jobs'])} planned episodes of "
        f"{plan['suite']} have no result; rerun the same `lbi eval ... --run {run}` to finish",
        soft_wrap=True,
    )
    for variant, episodes in missing.items():
        shown = ", ".join(episodes[:8]) + (
            f", … ({len(episodes) - 8} more)" if len(episodes) > 8 else ""
        )
        err.print(f"  {variant}: {len(episodes)} missing: {shown}", soft_wrap=True, highlight=False)
    from rich.markup import escape

    from lbi.pipeline.synth import failures_by_stage

    for n, text in failures_by_stage(ctx).get("eval", []):
        err.print(f"  failed: {n} × {escape(text)}", soft_wrap=True, highlight=False)
