"""An lbi environment factory on the Python path but not installed: `--env counter_mod:make_env`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "counter_pkg"))

from lbi_counter import CounterEnv


def make_env(arg: str, config: Any) -> CounterEnv:
    """The counter, by module path."""
    return CounterEnv()
