"""A local datasette site for the `site` environment: the demo database and its server.

Why datasette: it turns any SQLite file into a real multi-page web app (tables, filters,
sorting, row pages, a SQL form) with no network and no setup, so `lbi envs check site` works
offline. The server runs on 127.0.0.1 at a free port, one per database per process, and dies
with its owner (a guard process, see watchdog.py), so a killed run leaves no server behind.
"""

from __future__ import annotations

import atexit
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from lbi.envs.base import EnvError
from lbi.envs.web.watchdog import guard_add, start_guard, stop_guard

_CATEGORIES = ["tools", "garden", "kitchen", "toys", "books"]
_ITEMS = [
    "hammer",
    "rake",
    "kettle",
    "kite",
    "atlas",
    "saw",
    "hose",
    "pan",
    "robot",
    "novel",
    "drill",
    "shovel",
]
_CITIES = ["Lyon", "Oslo", "Porto", "Quito", "Turku", "Delft"]
_NAMES = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu"]


def build_demo_db(path: Path) -> Path:
    """A small shop database (products, customers, orders), identical on every machine."""
    rng = random.Random(7)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.executescript(
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL);"
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),"
        " product_id INTEGER REFERENCES products(id), quantity INTEGER);"
    )
    products = [
        (i + 1, f"{rng.choice(_ITEMS)} {i + 1}", _CATEGORIES[i % 5], round(rng.uniform(2, 90), 2))
        for i in range(24)
    ]
    con.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", products)
    con.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i + 1, n, _CITIES[i % 6]) for i, n in enumerate(_NAMES)],
    )
    orders = [(i + 1, rng.randint(1, 12), rng.randint(1, 24), rng.randint(1, 5)) for i in range(40)]
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
    con.commit()
    con.close()
    tmp.replace(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Datasette:
    """`datasette serve DB` on 127.0.0.1; `url` is its root."""

    def __init__(self, db: Path, timeout_s: float = 30.0) -> None:
        if not db.is_file():
            raise EnvError(f"site: database file not found: {db}")
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "datasette",
            "serve",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--immutable",
            str(db),
            "--setting",
            "sql_time_limit_ms",
            "2000",
        ]
        # --immutable also serves the file as read-only, so the database is the same every episode.
        cmd.remove(str(db))
        # The guard, not PR_SET_PDEATHSIG: that signal follows the *thread* that forked, and
        # environments may be built on short-lived pool threads.
        self.guard = start_guard()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        guard_add(self.guard, [psutil.Process(self.proc.pid)])
        self._wait(timeout_s)

    def _wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (
                    (self.proc.stderr.read() if self.proc.stderr else b"")
                    .decode(errors="replace")
                    .strip()
                )
                raise EnvError(
                    f"datasette exited at start: {err.splitlines()[-1] if err else 'no output'} (pip install datasette)"
                )
            try:
                with urllib.request.urlopen(self.url + "/-/versions.json", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise EnvError(f"datasette did not answer on {self.url} within {timeout_s:.0f} s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        stop_guard(self.guard)


_SERVERS: dict[Path, Datasette] = {}
_DEMO_DIR: list[Path] = []


def demo_db() -> Path:
    """The demo database, built once per process in a temporary folder."""
    if not _DEMO_DIR:
        _DEMO_DIR.append(Path(tempfile.mkdtemp(prefix="lbi-site-")))
    path = _DEMO_DIR[0] / "shop.db"
    return path if path.is_file() else build_demo_db(path)


def shared_server(db: Path) -> Datasette:
    """One server per database per process, reused by every episode and environment."""
    db = db.resolve()
    srv = _SERVERS.get(db)
    if srv is None or srv.proc.poll() is not None:
        srv = _SERVERS[db] = Datasette(db)
    return srv


def _close_all() -> None:
    while _SERVERS:
        _SERVERS.popitem()[1].close()
    for d in _DEMO_DIR:
        for p in d.glob("*"):
            p.unlink(missing_ok=True)
        d.rmdir()


atexit.register(_close_all)
