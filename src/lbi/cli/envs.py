"""`lbi envs`: list environments, check one against the contract."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from lbi.cli.app import (
    ConfigOpt,
    DocsOpt,
    SetOpt,
    UrlOpt,
    app,
    cli_config,
    friendly,
    out,
)

envs_app = typer.Typer(
    help="Environments: list them, check one against the contract.", no_args_is_help=True
)
app.add_typer(envs_app, name="envs")


@envs_app.command("list")
@friendly
def envs_list() -> None:
    """List registered environments."""
    from lbi.envs.base import list_envs

    table = Table("environment", "description")
    for name, desc in list_envs().items():
        table.add_row(name, desc)
    out.print(table)


@envs_app.command("check")
@friendly
def envs_check(
    name: Annotated[str, typer.Argument(help="Environment spec, e.g. sql, sql:concert_singer.")],
    url: UrlOpt = None,
    docs: DocsOpt = None,
    suite: Annotated[
        str | None, typer.Option(help="A suite file (.jsonl/.yaml): its references must score.")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="The model behind any simulated party (tau2's customer): the offline, exact "
            "`scripted` double by default, so the check tests the environment, not a model.",
        ),
    ] = "scripted",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate an environment: docs, reproducible reset, bad actions, reference solutions, close."""
    from lbi.envs.base import make_env
    from lbi.envs.check import check_env
    from lbi.envs.suite_file import with_suite

    cfg = cli_config(config, set_, model, env=name, url=url, docs=docs)
    report = check_env(with_suite(lambda: make_env(name, cfg), suite))
    for r in report.results:
        mark = "[green]ok[/]  " if r.ok else "[red]FAIL[/]"
        out.print(
            f"{mark} {r.name}" + (f"  [dim]{r.detail}[/]" if r.detail else ""), soft_wrap=True
        )
    out.print(f"{name}: {'passed' if report.ok else 'FAILED'}")
    if not report.ok:
        raise typer.Exit(1)
