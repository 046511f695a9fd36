"""Wrap any Gymnasium environment whose observations and actions are text.

The user supplies the documentation (a folder of Markdown/text files, or `Doc` records) and a
one-line action description; the adapter turns exceptions from the wrapped `step` into error
observations so the contract holds. A new text environment is a few lines:

    register_env("myenv")(lambda arg, cfg: GymTextEnv(MyGymEnv(), name="myenv", docs_dir="docs/"))
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from lbi.envs.base import ActionSpace, StepResult
from lbi.types import Doc, Task


def docs_from_folder(env: str, folder: str | Path) -> list[Doc]:
    root = Path(folder)
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in {".md", ".txt", ".rst"}:
            text = p.read_text(errors="replace").strip()
            if text:
                out.append(Doc(env=env, source=str(p.relative_to(root)), title=p.stem, text=text))
    return out


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
        self._docs = list(docs or []) + (docs_from_folder(name, docs_dir) if docs_dir else [])
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
        from lbi.envs.base import EnvError

        raise EnvError(f"{self.name} has no benchmark suites")

    def sample_tasks(self) -> list[Task]:
        return list(self._tasks)
