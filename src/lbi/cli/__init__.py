"""The `lbi` command line: one thin module per command group; the logic lives in the layers below.

`lbi.cli.app` holds the Typer app and what every group shares; importing this package
registers every group's commands on it.
"""

from __future__ import annotations

from lbi.cli import (  # noqa: F401  (each group registers its commands)
    config_cmd,
    envs,
    evaluate,
    experiment,
    models,
    pipeline,
    repo,
    runs,
    suite,
    train,
    view,
)
from lbi.cli.app import app, plain_help

plain_help()


def main() -> None:
    app(prog_name="lbi")


__all__ = ["app", "main"]
