"""Benchmark: many connections opening one fresh SQLite file in WAL mode at the same moment.

The run store and the call cache open their files with `lbi.sqlite_wal.open_wal`. The plain
way (`sqlite3.connect(timeout=30)`, then `PRAGMA journal_mode=WAL` and the schema) fails now
and then with "database is locked" although a 30 s busy timeout is set: SQLite answers a
shared-to-exclusive lock upgrade that could deadlock at once. Both sides run here on the same
fresh files: `--threads` connections start together on each of `--files` new files.

    .venv/bin/python bench/sqlite_open.py [--threads 8] [--files 200]

Prints the failures per side and replaces the "## SQLite open race" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lbi.sqlite_wal import open_wal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine, write_section

HEADING = "SQLite open race"
SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, response TEXT NOT NULL);"


def plain(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def lbi_open(path: Path) -> sqlite3.Connection:
    return open_wal(path, SCHEMA)


def race(
    opener: Callable[[Path], sqlite3.Connection], root: Path, threads: int, files: int
) -> tuple[int, int, float]:
    """(failed opens, total opens, seconds) over `files` fresh files."""
    failed, started = 0, time.perf_counter()
    lock = threading.Lock()
    for n in range(files):
        path = root / f"{n}.sqlite"
        barrier = threading.Barrier(threads)

        def one(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            nonlocal failed
            barrier.wait()
            try:
                opener(path).close()
            except sqlite3.OperationalError:
                with lock:
                    failed += 1

        workers = [threading.Thread(target=one) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    return failed, threads * files, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args()
    where = machine()
    rows = []
    for name, opener in (
        ("plain connect(timeout=30)", plain),
        ("lbi.sqlite_wal.open_wal", lbi_open),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            failed, total, secs = race(opener, Path(tmp), a.threads, a.files)
        rows.append(f"| {name} | {failed} / {total} | {secs:.2f} |")
        print(f"{name}: {failed} of {total} opens failed ({secs:.2f} s)")
    body = "\n".join(
        [
            f"Machine: {where}. Script: `python bench/sqlite_open.py --threads {a.threads} "
            f"--files {a.files}`: {a.threads} threads open each of {a.files} fresh files at once "
            "(WAL switch + schema); both sides in this run.",
            "",
            "| opener | failed opens | seconds |",
            "|---|---|---|",
            *rows,
        ]
    )
    if not a.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
