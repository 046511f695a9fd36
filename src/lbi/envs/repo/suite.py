"""The bug suites: `repo-bugs` (shipped, over the PyPI projects) and `repo-bugs-local` (a file).

Instances are JSON lines written by `python -m lbi.envs.repo.bugs` (bugs.py): a name, an
issue-style instruction, `setup` (project and the patch that injects the bug) and `gold`
(FAIL_TO_PASS, PASS_TO_PASS, test files and the reverse patch), plus a reference: the gold patch
as edit actions, then `submit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lbi.envs.base import EnvError
from lbi.envs.repo.sources import DEMO_NAME, Sources
from lbi.types import Task

SUITE = "repo-bugs"
LOCAL = "repo-bugs-local"
DATA = Path(__file__).parent / "data"
SHIPPED = DATA / "repo_bugs.jsonl"
DEMO_BUGS = DATA / "demo_bugs.jsonl"


def read_instances(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def to_task(row: dict[str, Any]) -> Task:
    return Task(
        env="repo",
        name=row["name"],
        instruction=row["instruction"],
        setup=row["setup"],
        origin="benchmark",
        gold=row["gold"],
        reference=row["reference"],
    )


def local_file(sources: Sources, bugs_file: str | None) -> Path:
    if bugs_file:
        return Path(bugs_file)
    return sources.cache_root.parent.parent / "repo-bugs" / f"{sources.default}.jsonl"


def load(name: str, sources: Sources, bugs_file: str | None) -> list[Task]:
    if name == SUITE:
        return [to_task(r) for r in read_instances(SHIPPED)]
    if name == LOCAL:
        path = local_file(sources, bugs_file)
        if not path.exists():
            raise EnvError(f"no bug suite at {path}: build one with `lbi repo bugs --path PATH`")
        return [to_task(r) for r in read_instances(path)]
    raise EnvError(f"unknown suite {name!r} for env repo; known: {SUITE}, {LOCAL}")


def sample(sources: Sources, bugs_file: str | None) -> list[Task]:
    """Two bug instances on the default repository, when a suite for it exists."""
    if sources.default == DEMO_NAME:
        return [to_task(r) for r in read_instances(DEMO_BUGS)[:2]]
    path = local_file(sources, bugs_file)
    return [to_task(r) for r in read_instances(path)[:2]] if path.exists() else []
