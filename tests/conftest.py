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


def require(condition: bool, what: str) -> None:
    """Skip locally when a component is missing; in CI a missing component is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: `make test` must install and start it")
    pytest.skip(f"{what} is not available")
