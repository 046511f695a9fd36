"""Shared fixtures: an isolated config (run root in tmp, scripted model, hashing embedder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lbi.config import Config, load_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config(
        None, [f"run_root={tmp_path / 'runs'}", "model=scripted", "embed.name=hash", "env=toy"]
    )


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist (`make test` runs `-n 2 --dist loadgroup`): a module's tests stay
    on one worker, so its module fixtures (a converted database, a llama.cpp server, a Ray
    cluster) are built once; tests that share a server across modules (the MariaDB `make test`
    starts) stay on one worker whatever their module. Without xdist the marks change nothing."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        group = "mariadb" if item.get_closest_marker("mariadb") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


def require(condition: bool, what: str) -> None:
    """Skip locally when a component is missing; in CI a missing component is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: `make test` must install and start it")
    pytest.skip(f"{what} is not available")
