"""`lbi view`: browse a run in the browser, read-only (the app lives in `lbi.view`)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, friendly, out
from lbi.view import DEFAULT_PORT


@app.command("view")
@friendly
def view(
    run: Annotated[str, typer.Argument(help="Run name (under the run root) or a run folder.")],
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port (0: any free one).")
    ] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    public: Annotated[
        bool,
        typer.Option(
            "--public", help="Allow a non-loopback --host (anyone reaching it reads the run)."
        ),
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Browse a run in the browser, read-only: data, verdicts, evaluation episodes."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        from lbi.config import ConfigError

        raise ConfigError(
            f"lbi view needs the `view` extra ({e.name} is missing): pip install 'lbi[view]'"
        ) from None
    from lbi.view.serve import bind, check_host, new_token, opened, serve_forever, viewer_url

    check_host(host, public)
    token = new_token(host)  # off loopback only: other users or machines can reach it
    sock = bind(host, port)  # a taken port fails now, before the index is built
    try:
        with opened(run, config, set_) as v:
            port = sock.getsockname()[1]  # the one chosen when --port 0
            url = viewer_url(host, port, token)
            out.print(
                f"lbi view: {url}  (run {v.name}; Ctrl-C stops)", highlight=False, markup=False
            )
            # Ctrl-C is how a viewer stops: nothing to resume. uvicorn either returns or raises.
            with contextlib.suppress(KeyboardInterrupt):
                serve_forever(v, sock, host, token)
            out.print("lbi view: stopped.")
    finally:
        sock.close()
