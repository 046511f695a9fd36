"""Open a run for viewing (derived index in a temporary folder) and serve it with uvicorn."""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lbi.config import ConfigError
from lbi.view.guard import is_loopback
from lbi.view.index import build_index
from lbi.view.queries import RunView
from lbi.view.source import resolve_run


class ViewError(ConfigError):
    """A viewer setting that cannot work (a public address without --public, a taken port)."""


def check_host(host: str, public: bool) -> None:
    """Only loopback unless the user said `--public`: the pages show prompts and data."""
    if not is_loopback(host) and not public:
        raise ViewError(
            f"{host} is not a loopback address: anyone who can reach it could read the run; "
            "add --public to serve on it anyway"
        )


def new_token(host: str) -> str | None:
    """The token a viewer on `host` asks for: none on loopback (the default workflow stays one
    command and one URL), a fresh one wherever other machines can reach it."""
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def viewer_url(host: str, port: int, token: str | None = None) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"http://{name}:{port}/" + (f"?token={token}" if token else "")


@contextmanager
def opened(
    run: str, config: Path | None = None, sets: list[str] | None = None
) -> Iterator[RunView]:
    """The run's view; its derived index lives in a temporary folder removed on exit."""
    ctx = resolve_run(run, config, sets)
    tmp = Path(tempfile.mkdtemp(prefix="lbi-view-"))
    try:
        index = tmp / "index.sqlite"
        build_index(ctx, index)
        ctx.store.close()
        yield RunView(ctx.name, ctx.dir, ctx.store.path, index)
    finally:
        ctx.store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), so a caller knows the port before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ViewError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    return sock


@contextmanager
def serving(
    view: RunView, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> Iterator[str]:
    """Serve in a background thread; yields the base URL; stops the server on exit."""
    import uvicorn

    from lbi.view.app import create_app

    app = create_app(view, host, token)
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise ViewError("the viewer's server failed to start")
            threading.Event().wait(0.02)
        yield viewer_url(host, sock.getsockname()[1]).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_forever(
    view: RunView, sock: socket.socket, host: str = "127.0.0.1", token: str | None = None
) -> None:
    """Serve on `sock` (from `bind` on `host`) until Ctrl-C; the socket is closed afterwards."""
    import uvicorn

    from lbi.view.app import create_app

    try:
        app = create_app(view, host, token)
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
    finally:
        sock.close()
