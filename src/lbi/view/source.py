"""The run, opened read-only: the store's read API over a `mode=ro` SQLite connection."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from lbi.config import Config, apply_override, config_from_dict, load_config
from lbi.run import RunContext, RunError
from lbi.store import DB_NAME, RunStore


def connect_ro(path: str | Path) -> sqlite3.Connection:
    """A read-only connection: SQLite refuses every write made through it."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)


class ReadOnlyStore(RunStore):
    """`RunStore`'s reads over a read-only connection; any write raises PermissionError."""

    def __init__(self, root: str | Path) -> None:  # no super(): it would create the schema
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self._lock = threading.RLock()
        self._conn = connect_ro(self.path)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        raise PermissionError("the viewer opens runs read-only")
        yield self._conn  # pragma: no cover  (unreachable; keeps this a generator)


class ReadOnlyRun(RunContext):
    """A RunContext whose store is read-only and whose config is the run's stored one."""

    def __init__(self, name: str, folder: Path, config: Config) -> None:  # no super(): no writes
        self.name = name
        self.config = config
        self.dir = folder
        self.store = ReadOnlyStore(folder)
        self._doors = {}
        self._cache = None
        self._accountant = None
        self._embedder = None


def resolve_run(run: str, config: Path | None = None, sets: list[str] | None = None) -> ReadOnlyRun:
    """RUN is a folder holding run.sqlite, or a run name under the run root; its stored config
    (with --config and --set on top) says which judges and policy `lbi stats` would use."""
    base = load_config(config, sets)
    folder = Path(run) if (Path(run) / DB_NAME).is_file() else Path(base.run_root) / run
    if not (folder / DB_NAME).is_file():
        raise RunError(f"no run named {run!r} under {base.run_root}/ (see `lbi runs list`)")
    stored = folder / "config.yaml"
    cfg = base
    if stored.is_file():
        data = yaml.safe_load(stored.read_text()) or {}
        if config is not None:
            for k, v in (yaml.safe_load(Path(config).read_text()) or {}).items():
                data[k] = v
        for assignment in sets or []:
            apply_override(data, assignment)
        cfg = config_from_dict(data)
    return ReadOnlyRun(folder.name, folder.resolve(), cfg)
