"""The `lbi view` command's body; `lbi.cli` registers it with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbi.view import DEFAULT_PORT


def view(
    run: Annotated[str, typer.Argument(help="Run name (under the run root) or a run folder.")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port (0: any free one).")] = (
        DEFAULT_PORT
    ),
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    public: Annotated[
        bool,
        typer.Option(
            "--public", help="Allow a non-loopback --host (anyone reaching it reads the run)."
        ),
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override: a.b=value (repeatable).")
    ] = None,
) -> None:
    """Browse a run in the browser, read-only: data, verdicts, evaluation episodes."""
    from lbi.view.serve import ViewError, bind, check_host, opened, serve_forever

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ViewError(
            f"lbi view needs the `view` extra ({e.name} is missing): pip install 'lbi[view]'"
        ) from None
    check_host(host, public)
    bind(host, port).close()  # a taken port fails now, before the index is built
    with opened(run, config, set_) as v:
        typer.echo(f"lbi view: http://{host}:{port}/  (run {v.name}; Ctrl-C stops)")
        serve_forever(v, host, port)
