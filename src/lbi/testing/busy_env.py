"""`toy` with steps that cost real CPU, and that can be told to hang or crash: a double for
scale-out and for failed episodes.

Spec: `lbi.testing.busy_env:make:busy_ms=100,hang=set-a` — every step burns `busy_ms` of CPU
time (a browser or sandbox step's cost, without the browser); a step of the task named `hang`
never returns (an environment that stopped answering); a step of the task named `crash`
raises (an environment whose connection broke, while `crash_file` exists when one is named:
remove the file and the environment has recovered). Same records as `toy` otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from lbi.envs.base import StepResult
from lbi.envs.toy import ToyEnv

if TYPE_CHECKING:
    from lbi.config import Config


def burn(seconds: float) -> None:
    """Busy-loop until this thread has used `seconds` of CPU time."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x = (x * 31 + 7) % 1_000_003


class BusyToy(ToyEnv):
    def __init__(
        self, busy_ms: float = 0.0, hang: str = "", crash: str = "", crash_file: str = ""
    ) -> None:
        super().__init__()
        self.busy_s, self.hang = busy_ms / 1000.0, hang
        self.crash, self.crash_file = crash, crash_file

    def step(self, action: str) -> StepResult:
        if self.hang and self.task is not None and self.task.name == self.hang:
            time.sleep(3600)
        broken = not self.crash_file or Path(self.crash_file).exists()
        if self.crash and self.task is not None and self.task.name == self.crash and broken:
            raise ConnectionResetError("the environment's connection was reset")
        burn(self.busy_s)
        return super().step(action)


def make(arg: str, config: Config) -> BusyToy:
    opts = dict(kv.split("=", 1) for kv in arg.split(",") if "=" in kv)
    return BusyToy(
        float(opts.get("busy_ms", 0)),
        opts.get("hang", ""),
        opts.get("crash", ""),
        opts.get("crash_file", ""),
    )
