"""`lbi models`: probe an endpoint before spending."""

from __future__ import annotations

from typing import Annotated

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, arun, cli_config, err, friendly, out

models_app = typer.Typer(
    help="Model backends: probe an endpoint before spending.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("probe")
@friendly
def models_probe(
    model: Annotated[str, typer.Argument(help="Model spec to probe.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check an endpoint before any money is spent: answers? JSON schema? real tool calls?"""
    from lbi.models.probe import format_report, probe

    report = arun(probe(model, cli_config(config, set_)))
    if not report.answers:
        err.print(f"[red]error:[/] {model}: no answer — {report.error}", highlight=False)
        raise typer.Exit(2)
    out.print(format_report(report), markup=False, highlight=False)
