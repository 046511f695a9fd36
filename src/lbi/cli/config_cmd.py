"""`lbi config`: show the effective configuration."""

from __future__ import annotations

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, cli_config, friendly, out
from lbi.config import dump_config

config_app = typer.Typer(
    help="Show the effective configuration (the keys `--set` takes).", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("show")
@friendly
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective configuration (defaults + file + --set overrides) as YAML."""
    out.print(dump_config(cli_config(config, set_)), end="", markup=False, highlight=False)
