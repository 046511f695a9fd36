"""A Gymnasium house to walk through, whose valid actions change at every step.

Each room has its own exits, and `info["moves"]` lists the moves valid from the room the player
is in (`go north`, `go up`, ...): with `env_options.gym.actions_info=moves` the adapter passes
them on as `info["valid_actions"]`, so the agent's grammar (or check) follows the room. The game
is won in the attic (`info["won"]`). A move that is not an exit of the room is "You cannot go
that way." Registered on import, so `--env gym:rooms:LbiRooms-v0` finds it.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium
from gymnasium import spaces

EXITS = {
    "hall": {"north": "library", "east": "kitchen"},
    "kitchen": {"west": "hall", "down": "cellar"},
    "cellar": {"up": "kitchen"},
    "library": {"south": "hall", "up": "attic"},
    "attic": {"down": "library"},
}

MANUAL = """# The house

You start in the hall. Move with `go DIRECTION` (north, south, east, west, up, down); the
moves valid from your room are listed after each observation. Find the attic.
"""


class RoomsGame(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(400, charset=string.printable)
        self.action_space = spaces.Text(40, charset=string.printable)
        self.room = "hall"

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.room = "hall"
        return self._look(), self._info()

    def _look(self) -> str:
        return f"You are in the {self.room}."

    def _info(self) -> dict[str, Any]:
        moves = [f"go {d}" for d in EXITS[self.room]]
        return {"moves": moves, "won": self.room == "attic"}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        words = action.strip().lower().split()
        to = EXITS[self.room].get(words[1]) if words[:1] == ["go"] and len(words) == 2 else None
        if to is None:
            return "You cannot go that way.", 0.0, False, False, self._info()
        self.room = to
        won = to == "attic"
        return self._look(), 1.0 if won else 0.0, won, False, self._info()


if "LbiRooms-v0" not in gymnasium.registry:
    gymnasium.register(id="LbiRooms-v0", entry_point=RoomsGame, max_episode_steps=20)
