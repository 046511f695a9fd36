"""A Gymnasium text game: guess the hidden word's letters. Registered as `LbiGuess-v0` on import,
so `--env gym:textgame:LbiGuess-v0` finds it the way `gymnasium.make("module:Id")` does.

Like a text adventure: the variation (reset option `variation`, else the seed) picks the word,
each newly found letter scores 0.125 (a score, never 1.0 on one step), an unknown command is an
observation ("Unknown command"), and `info` carries the score, `won`, and the valid actions.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium
from gymnasium import spaces

WORDS = ("cat", "dog", "owl", "bee")
POINT = 0.125


class GuessGame(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(400, charset=string.printable)
        self.action_space = spaces.Text(50, charset=string.printable)
        self.word, self.found, self.tried, self.score = "cat", set[str](), set[str](), 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.word = WORDS[int((options or {}).get("variation", seed or 0)) % len(WORDS)]
        self.found, self.tried, self.score = set(), set(), 0.0
        return self._board(), self._info()

    def _board(self) -> str:
        return "word: " + " ".join(c if c in self.found else "_" for c in self.word)

    def _info(self, won: bool = False) -> dict[str, Any]:
        valid = [f"guess {c}" for c in string.ascii_lowercase if c not in self.tried]
        return {"score": self.score, "won": won, "valid": valid}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        words = action.strip().lower().split()
        if len(words) != 2 or words[0] != "guess" or len(words[1]) != 1:
            return "Unknown command. Say `guess X`.", 0.0, False, False, self._info()
        letter = words[1]
        self.tried.add(letter)
        new = letter in self.word and letter not in self.found
        self.found.add(letter)
        reward = POINT if new else 0.0
        self.score += reward
        won = set(self.word) <= self.found
        return self._board(), reward, won, False, self._info(won)


if "LbiGuess-v0" not in gymnasium.registry:
    gymnasium.register(id="LbiGuess-v0", entry_point=GuessGame, max_episode_steps=12)


def solved(task: Any, outcome: Any) -> bool:
    """A `{"python": "textgame:solved"}` suite check: the game says it is won."""
    return bool(outcome.info.get("won"))
