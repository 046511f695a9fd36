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


class StuckCounter(CounterEnv):
    """The counter behind a service that is down for one start value: its reset raises."""

    def reset(self, task: Any, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        if task.setup.get("start") == 5:
            raise ConnectionRefusedError("the counter service at 127.0.0.1:9 refused")
        return super().reset(task, seed)


def make_stuck_env(arg: str, config: Any) -> StuckCounter:
    """A counter whose reset fails on one of its suite's tasks."""
    return StuckCounter()
