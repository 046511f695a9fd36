"""A Gymnasium household game that picks its task when it is made and knows its own tasks.

`gymnasium.make("LbiChores-v0", task="tidy")` (or `task="wash"`): the constructor needs the
task, and refuses one it does not know with a `ValueError`; `reset` takes no options and refuses
any. The seed picks which five objects are in the room. `info` after `reset` carries the task's
description (`task_description`) and a solution (`gold_actions`, 10 steps), as ALFWorld-style
games do. Each `reset` lists the objects in a new order, whatever the seed: the behaviour
`lbi envs check` reports as a reset that is not reproducible, showing the lines that differ.
Registered on import, so `--env gym:chores:LbiChores-v0` finds it.
"""

from __future__ import annotations

import random
import string
from typing import Any

import gymnasium
from gymnasium import spaces

# Each object, and where `tidy` puts it away.
PLACES = {
    "book": "shelf",
    "cup": "cupboard",
    "sock": "basket",
    "pen": "desk",
    "plate": "cupboard",
    "towel": "rail",
    "mug": "cupboard",
}
TASKS = {
    "tidy": "Put every object in the room where it belongs.",
    "wash": "Wash and then dry every object in the room.",
}

MANUAL = """# Chores

A room holds five objects. Commands, one per turn:

- `take X`: pick up object X.
- `put X on PLACE`: put the object you hold where it belongs (a shelf, a cupboard, ...).
- `wash X` and `dry X`: wash an object, then dry it.

Anything else: "Nothing happens." The game is won when the chore is done for every object.
"""


class ChoresGame(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        self.task = task
        self.observation_space = spaces.Text(2000, charset=string.printable)
        self.action_space = spaces.Text(80, charset=string.printable)
        self.objects: list[str] = []
        self.done: dict[str, set[str]] = {}
        self.holding = ""
        self._order: list[str] = []
        self._resets = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; this game takes none")
        names = list(PLACES)
        start = (seed or 0) % len(names)
        self.objects = (names[start:] + names[:start])[:5]
        self.done = {o: set() for o in self.objects}
        self.holding = ""
        self._resets += 1
        order = list(self.objects)
        random.Random(self._resets).shuffle(order)  # not the seed: a new order every reset
        if order == self._order:
            order = order[1:] + order[:1]
        self._order = order
        return self._look(), self._info()

    def gold(self) -> list[str]:
        if self.task == "tidy":
            return [a for o in self.objects for a in (f"take {o}", f"put {o} on {PLACES[o]}")]
        return [a for o in self.objects for a in (f"wash {o}", f"dry {o}")]

    def _won(self) -> bool:
        need = {"placed"} if self.task == "tidy" else {"washed", "dried"}
        return all(need <= steps for steps in self.done.values())

    def _look(self) -> str:
        lines = [f"Chore: {TASKS[self.task]}", "You see:"]
        lines += [f"  - {o}" + (" (done)" if self._chore_done(o) else "") for o in self._order]
        return "\n".join(lines)

    def _chore_done(self, obj: str) -> bool:
        need = {"placed"} if self.task == "tidy" else {"washed", "dried"}
        return need <= self.done[obj]

    def _info(self, won: bool = False) -> dict[str, Any]:
        return {"task_description": TASKS[self.task], "gold_actions": self.gold(), "won": won}

    def _act(self, words: list[str]) -> bool:
        """Whether the command did something."""
        verb, obj = [*words, "", ""][:2]
        if obj not in self.done:
            return False
        if verb == "take" and self.task == "tidy" and not self.holding:
            self.holding = obj
            return True
        if verb == "put" and self.holding == obj and words[2:] == ["on", PLACES[obj]]:
            self.holding = ""
            self.done[obj].add("placed")
            return True
        if verb == "wash" and self.task == "wash":
            self.done[obj].add("washed")
            return True
        if verb == "dry" and self.task == "wash" and "washed" in self.done[obj]:
            self.done[obj].add("dried")
            return True
        return False

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._act(action.strip().lower().split()):
            return "Nothing happens.", 0.0, False, False, self._info()
        won = self._won()
        return self._look(), 1.0 if won else 0.0, won, False, self._info(won)


if "LbiChores-v0" not in gymnasium.registry:
    gymnasium.register(id="LbiChores-v0", entry_point=ChoresGame, max_episode_steps=40)
