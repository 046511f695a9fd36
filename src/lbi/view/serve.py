"""Open a run for viewing (derived index in a temporary folder) and serve it with uvicorn."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lbi.config import ConfigError, dump_config
from lbi.types import content_id
from lbi.view.guard import is_loopback
from lbi.view.index import INDEX_FORMAT, build_index
from lbi.view.queries import RunView
from lbi.view.source import ReadOnlyRun, connect_ro, resolve_run


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
    """The run's view over its derived index, built on first use and kept for the next start
    (`cached_index`)."""
    ctx = resolve_run(run, config, sets)
    try:
        index = cached_index(ctx)
        ctx.store.close()
        yield RunView(ctx.name, ctx.dir, ctx.store.path, index)
    finally:
        ctx.store.close()


def cached_index(ctx: ReadOnlyRun) -> Path:
    """The derived index for the run as it is now, under `<run_root>/.cache/view/`.

    Building it reads every example (a minute at a million); a finished run's next `lbi view`
    should not pay that again. The file is named by what it is derived from: the store's last
    record number and record count (the store only appends; a replaced or dropped record
    changes one or the other), its meta table (the Table 1 row's spend), the settings and the
    index's own format. The run folder itself is never written; of the run's older files the
    newest KEEP stay (a viewer started earlier may be serving one)."""
    src = connect_ro(ctx.store.path)
    try:
        meta = src.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
    finally:
        src.close()
    key = content_id(
        "view", str(INDEX_FORMAT), ctx.store.state(), json.dumps(meta), dump_config(ctx.config)
    )
    folder = Path(ctx.config.run_root) / ".cache" / "view"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ctx.name}-{key}.sqlite"
    if not path.is_file():
        fd, scratch = tempfile.mkstemp(dir=folder, prefix=f".{ctx.name}-", suffix=".tmp")
        os.close(fd)
        try:
            Path(scratch).unlink()
            build_index(ctx, Path(scratch))
            os.replace(scratch, path)
        finally:
            Path(scratch).unlink(missing_ok=True)
        _prune(folder, ctx.name)
    return path


KEEP = 3  # cached indexes kept per run: an older one may still be served by a viewer left open


def _prune(folder: Path, run: str) -> None:
    """Remove this run's cached indexes but the newest KEEP (another run's name may start with
    this one's, so only names of exactly this shape count)."""
    shape = re.compile(re.escape(run) + r"-[0-9a-f]{16}\.sqlite")
    mine = [p for p in folder.iterdir() if shape.fullmatch(p.name)]
    mine.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    for old in mine[KEEP:]:
        old.unlink(missing_ok=True)


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
