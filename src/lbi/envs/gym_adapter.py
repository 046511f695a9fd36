"""Wrap any Gymnasium environment whose observations and actions are text.

The user supplies the documentation (a file or folder of Markdown/text files, or `Doc` records)
and a one-line action description; the adapter turns exceptions from the wrapped `step` into
error observations so the contract holds. From the command line, with no Python at all:

    lbi synth --env gym:MyGame-v0 --set env_options.gym.docs=docs/game.md

(`gym:module:MyGame-v0` imports `module` first, as `gymnasium.make` does, so an environment
registered on import is found.) Settings under `env_options.gym`: `docs` (file or folder),
`action_description`, `kwargs` (passed to `gymnasium.make`). In Python, a few lines:

    register_env("myenv")(lambda arg, cfg: GymTextEnv(MyGymEnv(), name="myenv", docs_dir="docs/"))
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.docs import docs_from_path

if TYPE_CHECKING:
    from lbi.config import Config
from lbi.types import Doc, Task


class GymTextEnv:
    max_concurrency = 1

    def __init__(
        self,
        gym_env: Any,
        name: str,
        docs: list[Doc] | None = None,
        docs_dir: str | Path | None = None,
        action_description: str = "Reply with one text action.",
        tasks: list[Task] | None = None,
    ) -> None:
        self.gym_env = gym_env
        self.name = name
        self._docs = list(docs or []) + (docs_from_path(name, docs_dir) if docs_dir else [])
        self._action_description = action_description
        self._tasks = tasks or [
            Task(env=name, instruction="Interact with the environment.", origin="user")
        ]
        self._last_obs = ""

    def docs(self) -> list[Doc]:
        return list(self._docs)

    def action_space(self) -> ActionSpace:
        return ActionSpace(description=self._action_description)

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        options = dict(task.setup) or None
        obs, info = self.gym_env.reset(seed=seed if seed is not None else 0, options=options)
        self._last_obs = str(obs)
        return self._last_obs, dict(info or {})

    def step(self, action: str) -> StepResult:
        if not isinstance(action, str) or not action.strip():
            return "Error: empty action.", 0.0, False, False, {"error": True}
        try:
            obs, reward, terminated, truncated, info = self.gym_env.step(action)
        except Exception as e:  # the wrapped env rejected the action: tell the agent, go on
            return f"Error: {type(e).__name__}: {e}", 0.0, False, False, {"error": True}
        info = dict(info or {})
        self._last_obs = str(obs)
        return self._last_obs, float(reward), bool(terminated), bool(truncated), info

    def state_digest(self) -> str:
        digest = getattr(self.gym_env, "state_digest", None)
        basis = digest() if callable(digest) else self._last_obs
        return hashlib.sha256(str(basis).encode()).hexdigest()[:16]

    def close(self) -> None:
        self.gym_env.close()

    def suites(self) -> list[str]:
        return []

    def load_suite(self, name: str) -> list[Task]:
        raise EnvError(f"{self.name} has no benchmark suites")

    def sample_tasks(self) -> list[Task]:
        return list(self._tasks)


@register_env("gym")
def make_gym_env(arg: str, config: Config) -> GymTextEnv:
    """`gym:ID`: any registered Gymnasium environment with text observations and actions."""
    opts = dict(config.env_options.get("gym", {}))
    if not arg:
        raise EnvError("gym needs a Gymnasium id: --env gym:ID (or gym:module:ID)")
    try:
        import gymnasium
    except ImportError:
        raise EnvError("gym:ID needs gymnasium: pip install 'lbi[gym]'") from None
    try:
        gym_env = gymnasium.make(arg, **dict(opts.get("kwargs") or {}))
    except (gymnasium.error.Error, ModuleNotFoundError) as e:
        raise EnvError(f"gym:{arg}: {e}") from None
    docs = opts.get("docs")
    if not docs:
        gym_env.close()
        raise EnvError(
            f"gym:{arg} needs its documentation: --set env_options.gym.docs=FILE_OR_FOLDER"
        )
    description = str(opts.get("action_description") or "Reply with one text action.")
    return GymTextEnv(gym_env, name=f"gym:{arg}", docs_dir=docs, action_description=description)
