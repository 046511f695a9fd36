"""An OpenEnv server for tests: a counter that an episode must bring to a target, then submit.

Runs with openenv-core in its own virtualenv (`.venv-openenv`, made by `make test`: openenv-core
pulls packages that would move lbi's), never imported by lbi:

    .venv-openenv/bin/python tests/openenv_server.py PORT [--structured]

Text actions (`command`: "add N", "sub N", "show", "submit"), or with `--structured` a typed
action with two fields (`op` and `n`), so the JSON path of lbi's adapter is exercised. `reset`
takes the task's `target` (default 3); `submit` ends the episode with reward 1.0 when the counter
is at the target, else 0.0.
"""

from __future__ import annotations

import sys
from typing import Any, Literal
from uuid import uuid4

import uvicorn
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State
from pydantic import Field

README = """# Counter

A counter starts at 0 and must reach the episode's target number.

- `add N` adds N to the counter (N is a whole number from 1 to 9).
- `sub N` takes N away.
- `show` says where the counter is.
- `submit` ends the episode: it succeeds when the counter is at the target.

Example: to reach 3, send `add 2`, then `add 1`, then `submit`.
"""


class TextAction(Action):
    command: str = Field(..., description="add N, sub N, show or submit")


class TypedAction(Action):
    op: Literal["add", "sub", "show", "submit"] = Field(..., description="what to do")
    n: int = Field(default=0, ge=0, le=9, description="how much to add or take away")


class CounterObservation(Observation):
    text: str = Field(default="", description="what happened")


class Counter(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._state = State(episode_id=str(uuid4()), step_count=0)
        self.value, self.target = 0, 3

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, target: int = 3, **_: Any
    ) -> CounterObservation:
        self._state = State(episode_id=episode_id or str(uuid4()), step_count=0)
        self.value, self.target = 0, int(target)
        return CounterObservation(text=f"The counter is at 0. Reach {self.target}, then submit.")

    def step(self, action: Action, **_: Any) -> CounterObservation:  # type: ignore[override]
        self._state.step_count += 1
        if isinstance(action, TypedAction):
            op, n = action.op, action.n
        else:
            words = str(getattr(action, "command", "")).split()
            op = words[0] if words else ""
            try:
                n = int(words[1]) if len(words) > 1 else 0
            except ValueError:
                return CounterObservation(text=f"not a number: {words[1]!r}")
        if op == "add":
            self.value += n
        elif op == "sub":
            self.value -= n
        elif op == "submit":
            won = self.value == self.target
            return CounterObservation(
                text=f"Submitted {self.value}.", done=True, reward=1.0 if won else 0.0
            )
        elif op != "show":
            return CounterObservation(
                text=f"unknown command {op!r}: use add N, sub N, show, submit"
            )
        return CounterObservation(text=f"The counter is at {self.value}.", reward=0.0)

    @property
    def state(self) -> State:
        return State(
            episode_id=self._state.episode_id,
            step_count=self._state.step_count,
            value=self.value,
            target=self.target,
        )

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name="counter",
            description="A counter to bring to a target number, then submit.",
            readme_content=README,
            version="1.0",
        )


def main() -> None:
    port = int(sys.argv[1])
    action = TypedAction if "--structured" in sys.argv else TextAction
    app = create_app(Counter, action, CounterObservation, env_name="counter", max_concurrent_envs=4)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
