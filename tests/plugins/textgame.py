"""A Gymnasium text game: guess the hidden word's letters. Registered as `LbiGuess-v0` on import,
so `--env gym:textgame:LbiGuess-v0` finds it the way `gymnasium.make("module:Id")` does."""

from __future__ import annotations

import string
from typing import Any

import gymnasium
from gymnasium import spaces

WORDS = ("cat", "dog", "owl")


class GuessGame(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(200, charset=string.printable)
        self.action_space = spaces.Text(50, charset=string.printable)
        self.word, self.found = "cat", set[str]()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.word = WORDS[int((options or {}).get("variation", seed or 0)) % len(WORDS)]
        self.found = set()
        return self._board(), {}

    def _board(self) -> str:
        return "word: " + " ".join(c if c in self.found else "_" for c in self.word)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        words = action.strip().lower().split()
        if len(words) != 2 or words[0] != "guess" or len(words[1]) != 1:
            raise ValueError("say `guess X` with one letter X")
        letter = words[1]
        self.found.add(letter)
        solved = set(self.word) <= self.found
        return self._board(), float(solved), solved, False, {"hit": letter in self.word}


if "LbiGuess-v0" not in gymnasium.registry:
    gymnasium.register(id="LbiGuess-v0", entry_point=GuessGame, max_episode_steps=12)
