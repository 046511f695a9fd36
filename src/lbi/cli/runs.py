"""`lbi runs`: the runs under the run root."""

from __future__ import annotations

import json

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, cli_config, friendly, out

runs_app = typer.Typer(help="Runs under the run root: list them, show one.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
@friendly
def runs_list(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List runs under the run root."""
    from rich.markup import escape

    from lbi.store import list_runs, store_problem

    cfg = cli_config(config, set_)
    for p in list_runs(cfg.run_root):
        problem = store_problem(p)
        out.print(escape(p.name) + (f"  [red]DAMAGED[/]: {escape(problem)}" if problem else ""))


@runs_app.command("show")
@friendly
def runs_show(name: str, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Show a run's record counts and spend."""
    from lbi.run import RunContext

    ctx = RunContext(name, cli_config(config, set_), create=False)
    out.print_json(json.dumps(ctx.info()))
    ctx.store.close()
