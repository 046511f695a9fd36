"""Pipeline commands: synth and its stages, export, stats, and a single episode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

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
    friendly,
    out,
    start_run,
)
from lbi.config import Config
from lbi.pipeline.synth import STAGES
from lbi.run import existing_run


def _limited(cfg: Config, limit: int | None, concurrency: int | None) -> Config:
    """--limit N: the first N tasks, proposed from only as many doc chunks as that needs."""
    synth, door = cfg.synth, cfg.door
    if limit:
        chunks = synth.max_chunks or -(-limit // max(1, synth.tasks_per_chunk))
        synth = synth.model_copy(update={"max_tasks": limit, "max_chunks": chunks})
    if concurrency:
        door = door.model_copy(update={"concurrency": concurrency})
    return cfg.model_copy(update={"synth": synth, "door": door})


def _dry_run(cfg: Config) -> None:
    from lbi.envs.base import make_env
    from lbi.pipeline.estimate import synth_estimate
    from lbi.run import check_inputs

    check_inputs(cfg)
    env = make_env(cfg.env, cfg)
    try:
        out.print(synth_estimate(cfg, env).line(), soft_wrap=True, highlight=False)
    finally:
        env.close()


def _stages(stages: tuple[str, ...], cfg: Config, run: str | None) -> None:
    from lbi.envs.base import make_env
    from lbi.envs.preflight import preflight
    from lbi.pipeline.preflight import synth_starts
    from lbi.pipeline.synth import run_all

    if {"tasks", "rollout"} & set(stages):  # the stages that start episodes from the docs
        preflight(lambda: make_env(cfg.env, cfg), lambda env: synth_starts(cfg, env))
    ctx = start_run(cfg, run)

    async def go() -> dict:
        try:
            return await run_all(ctx, stages)
        finally:
            await ctx.aclose()

    _print_stats(arun(go()))


def _print_stats(s: dict) -> None:
    from rich.table import Table

    table = Table(
        "docs",
        "tasks",
        "trajectories",
        "raw examples",
        "kept examples",
        title="dataset (paper Table 1 row)",
    )
    table.add_row(
        *(str(s[k]) for k in ("docs", "tasks", "trajectories", "raw_examples", "kept_examples"))
    )
    out.print(table)
    # Retries, failed calls, cut answers and reasoning tokens only when some stage had any.
    columns = {"calls": "calls", "cache_hits": "cache hits", "prompt_tokens": "prompt tok",
               "completion_tokens": "completion tok"}  # fmt: skip
    optional = {"cached_prompt_tokens": "cached prompt tok",
                "reasoning_tokens": "reasoning tok", "retries": "retries",
                "timeouts": "timeouts", "failures": "failed calls",
                "truncated": "cut answers",
                "estimated_calls": "calls without usage (counted by lbi)"}  # fmt: skip
    stages = s["stages"]
    columns |= {k: v for k, v in optional.items() if any(st.get(k) for st in stages.values())}
    spend = Table("stage", *columns.values(), "$", title="spend")
    for name, st in stages.items():
        spend.add_row(name, *(str(st.get(k, 0)) for k in columns), f"{st.get('cost_usd', 0.0):.4f}")
    out.print(spend)
    models = s.get("models") or {}
    if len(models) > 1:  # one row per model (and so per endpoint) when the roles use several
        books = Table("model", *columns.values(), "$", title="spend by model")
        for name, st in models.items():
            books.add_row(
                name, *(str(st.get(k, 0)) for k in columns), f"{st.get('cost_usd', 0.0):.4f}"
            )
        out.print(books)
    _print_failures(s.get("failures") or {})
    cpk = s["calls_per_kept_example"]
    out.print(
        f"policy {s['policy']} · judges {', '.join(s['judges'])} ({s['committee']}) · "
        f"calls per kept example: {cpk:.2f}"
        if cpk
        else f"policy {s['policy']} · no kept examples yet"
    )


def _print_failures(failures: dict[str, list[tuple[int, str]]]) -> None:
    """The units that failed and are stored as failures: the next run of the command retries them."""
    if not failures:
        return
    from rich.markup import escape

    total = sum(n for found in failures.values() for n, _ in found)
    out.print(
        f"[yellow]{total} failed unit{'s' if total != 1 else ''}[/] (the next run of the same "
        "command retries them):",
        soft_wrap=True,
    )
    for stage, found in failures.items():
        for n, text in found:
            out.print(f"  {stage}: {n} × {escape(text)}", soft_wrap=True, highlight=False)


STAGE_COMMANDS = {  # command name -> (stages it runs, help)
    "synth": (
        STAGES,
        "Run every synthesis stage: tasks, rollouts, backward construction, filtering.",
    ),
    "tasks": (("tasks",), "Stage 1: propose tasks from documentation chunks (and/or exploration)."),
    "rollout": (("rollout",), "Stage 2: let the agent attempt every task; store every step."),
    "backward": (
        ("backward",),
        "Stage 3: label what each sub-trajectory accomplishes (two styles).",
    ),
    "filter": (("filter",), "Stage 4: rule filters, then the committee of judges."),
}


def _stage_command(stages: tuple[str, ...]) -> Callable[..., None]:
    def command(
        env: EnvOpt = None,
        model: ModelOpt = None,
        run: RunOpt = None,
        config: ConfigOpt = None,
        set_: SetOpt = None,
        url: UrlOpt = None,
        docs: DocsOpt = None,
        limit: LimitOpt = None,
        concurrency: ConcurrencyOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        cfg = cli_config(config, set_, model, env, url=url, docs=docs)
        cfg = _limited(cfg, limit, concurrency)
        if dry_run:
            _dry_run(cfg)
            return
        _stages(stages, cfg, run)

    return command


for _name, (_stages_of, _help) in STAGE_COMMANDS.items():
    app.command(_name, help=_help)(friendly(_stage_command(_stages_of)))


@app.command()
@friendly
def stats(
    run: Annotated[str, typer.Argument(help="Run name.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The paper's Table 1 row for a run, with calls, tokens and money per stage."""
    from lbi.pipeline.synth import stats as compute

    ctx = existing_run(run, config, set_)
    _print_stats(compute(ctx))
    ctx.store.close()


@app.command()
@friendly
def export(
    run: Annotated[str, typer.Argument(help="Run name.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="openai | hf | jsonl | adp")
    ] = "jsonl",
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Output file (openai, jsonl, adp) or folder (hf).")
    ] = Path("dataset.jsonl"),
    rejected: Annotated[
        bool, typer.Option(help="Export the rejected examples instead of the kept ones.")
    ] = False,
    records: Annotated[
        str,
        typer.Option(
            help="adp: examples, the whole trajectories they come from, or both.",
        ),
    ] = "examples",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write the dataset: OpenAI chat JSONL, a Hugging Face datasets folder, plain JSONL, or
    Agent Data Protocol trajectories (JSONL)."""
    from lbi.config import ConfigError, dump_config
    from lbi.pipeline import export as ex
    from lbi.pipeline.filter import Decision
    from lbi.pipeline.synth import action_space, iter_decisions, table_row
    from lbi.types import Trajectory, Verdict

    if records not in ("examples", "trajectories", "both"):
        raise ConfigError(f"--records must be examples, trajectories or both, not {records!r}")
    if records != "examples" and format != "adp":
        raise ConfigError("--records is for --format adp; the other formats export examples")
    ctx = existing_run(run, config, set_)
    space = action_space(ctx)
    native = bool(space.tools)
    chosen = raw = kept = 0
    # The trajectories of the chosen examples: kept only for ADP's whole trajectories.
    wanted: set[str] = set()
    track = format == "adp" and records != "examples"

    def pairs() -> Iterator[tuple[Decision, list[Verdict]]]:
        nonlocal chosen, raw, kept
        for d, vs in iter_decisions(ctx):
            raw, kept = raw + 1, kept + d.kept
            if d.kept != rejected:
                chosen += 1
                if track:
                    wanted.add(d.example.trajectory_id)
                yield d, vs

    if format == "openai":
        n = ex.export_openai(out_path, pairs(), space, native)
    elif format == "jsonl":
        n = ex.export_plain(out_path, pairs())
    elif format == "hf":

        def card() -> dict[str, Any]:  # after the rows: it counts what they counted
            s = table_row(ctx, raw, kept, [door.name for door in ctx.judges()])
            keys = ("docs", "tasks", "trajectories", "raw_examples", "kept_examples")
            return {
                "name": f"lbi dataset: {run}",
                "config": dump_config(ctx.config),
                "counts": {k: s[k] for k in keys},
            }

        n = ex.export_hf(out_path, pairs(), space, native, card)
    elif format == "adp":
        from lbi.pipeline.adp import export_adp

        examples = pairs()
        if records == "trajectories":  # walk the decisions for their trajectories, write none
            wanted.update(d.example.trajectory_id for d, _ in examples)
            examples = iter(())

        def trajectories() -> Iterator[Trajectory]:
            if records != "examples":
                yield from (t for t in ctx.store.iter(Trajectory) if t.id in wanted)

        n = export_adp(out_path, examples, trajectories, space)
    else:
        raise ConfigError(f"unknown export format {format!r}; use openai, hf, jsonl or adp")
    ctx.store.close()
    unit = {"openai": "chat samples", "adp": "ADP trajectories"}.get(format, "rows")
    out.print(
        f"wrote {n} {unit} ({chosen} {'rejected' if rejected else 'kept'} examples) to {out_path}"
    )


@app.command()
@friendly
def episode(
    env: EnvOpt = None,
    model: ModelOpt = None,
    url: UrlOpt = None,
    docs: DocsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    suite: Annotated[
        str | None, typer.Option(help="Take the task from this benchmark suite (or suite file).")
    ] = None,
    task: Annotated[
        int, typer.Option(help="Index of the task in the suite (or sample tasks).")
    ] = 0,
    instruction: Annotated[
        str | None, typer.Option(help="Or give an instruction directly.")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Step limit.")] = 6,
) -> None:
    """Run one episode of a model in an environment, printing each action and observation."""
    from rich.markup import escape

    from lbi.agents.react import EpisodeSettings, run_episode
    from lbi.config import ConfigError
    from lbi.envs.base import make_env
    from lbi.envs.suite_file import with_suite
    from lbi.models.accounting import Accountant
    from lbi.models.door import open_door
    from lbi.types import Step, Task, Trajectory

    cfg = cli_config(config, set_, model, env, url, docs)
    environment = with_suite(lambda: make_env(cfg.env, cfg), suite)()
    if instruction:
        base = environment.sample_tasks()[0]
        the_task = Task(env=base.env, instruction=instruction, setup=base.setup, origin="user")
    else:
        pool = environment.load_suite(suite) if suite else environment.sample_tasks()
        if not 0 <= task < len(pool):
            environment.close()
            where = f"suite {suite}" if suite else f"{cfg.env}'s sample tasks"
            raise ConfigError(
                f"--task {task} is out of range: {where} has {len(pool)} tasks (0 to {len(pool) - 1})"
            )
        the_task = pool[task]
    out.print(f"[bold]task[/] ({the_task.setup}): {the_task.instruction}")

    def show(_traj: Trajectory, s: Step) -> None:
        action = s.action if len(s.action) <= 300 else s.action[:300] + " …"
        out.print(f"[cyan]step {s.index}[/] REASON: {escape(s.reason[:200])}", highlight=False)
        out.print(f"[cyan]step {s.index}[/] ACTION: {escape(action)}", highlight=False)
        out.print(s.next_observation[:800], markup=False, highlight=False)

    async def go() -> None:
        door = open_door(cfg.model, cfg, Accountant(cfg))
        try:
            traj = await run_episode(
                door,
                environment,
                the_task,
                EpisodeSettings(max_steps=max_steps, stage="episode"),
                on_step=show,
            )
        finally:
            await door.aclose()
            environment.close()
        out.print(
            f"[bold]done[/]: {traj.stop_reason}, reward {traj.reward}, {len(traj.steps)} steps"
        )

    arun(go())
