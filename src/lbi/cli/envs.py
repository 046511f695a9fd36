"""`lbi envs`: list environments, check one against the contract, find shipped databases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lbi.cli.app import (
    ConfigOpt,
    DocsOpt,
    SetOpt,
    UrlOpt,
    app,
    cli_config,
    err,
    friendly,
    out,
)

envs_app = typer.Typer(
    help="Environments: list them, check one against the contract, find their databases.",
    no_args_is_help=True,
)
app.add_typer(envs_app, name="envs")


@envs_app.command("list")
@friendly
def envs_list() -> None:
    """List registered environments and the benchmark suites each ships."""
    from lbi.envs.base import SHIPPED_SUITES, list_envs

    table = Table("environment", "description", "suites")
    for name, desc in list_envs().items():
        table.add_row(name, desc, SHIPPED_SUITES.get(name, "its own (see lbi envs check)"))
    out.print(table)
    out.print("Any environment also takes a suite file: --suite FILE.jsonl (lbi suite init).")


@envs_app.command("check")
@friendly
def envs_check(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Environment spec, e.g. sql, sql:concert_singer (default: the config's `env`)."
        ),
    ] = None,
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
    from lbi.envs.preflight import preflight
    from lbi.envs.suite_file import with_suite

    cfg = cli_config(config, set_, model, env=name, url=url, docs=docs)
    make = with_suite(lambda: make_env(cfg.env, cfg), suite)
    preflight(make)  # a task the environment cannot even start is one line, exit 2
    report = check_env(make)
    for r in report.results:
        mark = "[yellow]skip[/]" if r.skipped else "[green]ok[/]  " if r.ok else "[red]FAIL[/]"
        detail = f"  [dim]{escape(r.detail)}[/]" if r.detail else ""
        out.print(f"{mark} {r.name}{detail}", soft_wrap=True)
        for line in r.lines:
            out.print(f"       {line}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"{cfg.env}: {'passed' if report.ok else 'FAILED'}")
    if not report.ok:
        raise typer.Exit(1)


@envs_app.command("data")
@friendly
def envs_data(
    name: Annotated[
        str, typer.Argument(help="sql (every Spider database), sql:NAME (one), or site.")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Copy the databases into this folder (made if missing)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Print where the databases an environment ships are (or copy them), running no episode:
    serve one with another tool, or point a suite's `db` at it."""
    from lbi.config import ConfigError
    from lbi.envs.data import copy_to, shipped_data

    cfg = cli_config(config, set_)
    shipped = shipped_data(name, cfg)
    if out_dir is None and not shipped.lasting:
        raise ConfigError(
            f"{name}'s database is built for each run and removed when it ends: "
            f"keep a copy with --out FOLDER"
        )
    files = copy_to(shipped, out_dir) if out_dir else shipped.files
    for db, path in files.items():
        print(f"{db}\t{path.resolve()}")
    err.print(f"{len(files)} SQLite file(s); {shipped.note}", soft_wrap=True, highlight=False)
