"""Wrap any Gymnasium environment whose observations and actions are text.

The user supplies the documentation (a file or folder of Markdown/text files, or `Doc` records)
and a one-line action description; the adapter turns exceptions from the wrapped `step` into
error observations so the contract holds. From the command line, with no Python at all:

    lbi synth --env gym:MyGame-v0 --set env_options.gym.docs=docs/game.md

(`gym:module:MyGame-v0` imports `module` first, as `gymnasium.make` does, so an environment
registered on import is found.) Settings under `env_options.gym` (`GymOptions`): `docs`,
`action_description`, `kwargs` (passed to `gymnasium.make`); the actions: `grammar` (a GBNF rule
for one action, so a grammar-capable model only writes valid ones), `actions` (a fixed list of
valid actions: a grammar and a check), `actions_info` (an `info` key listing the valid actions
at each step: shown with the observation, checked, and passed on as `info["valid_actions"]`,
which holds the agent to them at each step), `action_regex`, `examples`, `finish`;
`error_pattern` (a regex: an observation that matches is an error, e.g. "unknown command");
success: `success_info` (an `info` key that is true when won) and/or `success_score` (the
episode's return at least this). With a success option the final step's reward is 1.0 for a
won game and 0.0 otherwise (the wrapped env's own reward is in `info["env_reward"]`, the running
return in `info["return"]`). A task's `setup` goes to the wrapped `reset` as `options` (its
`seed`, if any, as the seed), except `make_kwargs`: constructor arguments on top of `kwargs`,
for a game that picks its task when it is made (the game is made at the first reset, and again
when they change).
`docs` is a file, a folder, or `module:ATTR`. An exception from the game's constructor is one
`EnvError` line naming the arguments. In Python, a few lines:

    register_env("myenv")(lambda arg, cfg: GymTextEnv(MyGymEnv(), name="myenv", docs_dir="docs/"))
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lbi.envs.base import (
    VALID_ACTIONS,
    ActionSpace,
    EnvError,
    StepResult,
    actions_grammar,
    one_line,
    register_env,
)
from lbi.envs.docs import docs_from_source
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config


Opts = TypeVar("Opts", bound=BaseModel)


class GymOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    docs: str | None = None
    docs_dir: str | None = None  # the same, as `--docs` sets it
    action_description: str = "Reply with one text action."
    kwargs: dict[str, Any] = Field(default_factory=dict)
    grammar: str | None = None
    actions: list[str] = Field(default_factory=list)
    actions_info: str | None = None
    action_regex: str | None = None
    examples: list[str] = Field(default_factory=list)
    finish: str | None = None
    error_pattern: str | None = None
    success_info: str | None = None
    success_score: float | None = None
    # Whether a seed changes a task (a procedurally drawn level); if not, `lbi experiment paper`
    # holds each task's own gold data out of its retrieval (lbi.envs.base.seeds_vary).
    seeds_vary: bool = False


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
        options: GymOptions | None = None,
        remake: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.gym_env = gym_env
        self.name = name
        self.options = options or GymOptions(action_description=action_description)
        self._docs = list(docs or []) + (docs_from_source(name, docs_dir) if docs_dir else [])
        # `setup.make_kwargs`: the game is made (again) with them at reset; with `remake` and no
        # `gym_env`, the game is made at the first reset (make_gym_env), so a game whose
        # constructor needs the task argument is made with the first task's.
        self._remake = remake
        self._made_with: dict[str, Any] | None = {} if gym_env is not None else None
        self._tasks = tasks or [
            Task(env=name, instruction="Interact with the environment.", origin="user")
        ]
        try:
            self._error = re.compile(self.options.error_pattern or r"(?!x)x", re.I)
            self._regex = re.compile(self.options.action_regex or r".*", re.S)
        except re.error as e:
            raise EnvError(f"{name}: bad regex in env_options.gym: {e}") from None
        self._last_obs = ""
        self._valid: list[str] | None = None
        self._return = 0.0

    @property
    def seeds_vary(self) -> bool:
        return self.options.seeds_vary

    def docs(self) -> list[Doc]:
        return list(self._docs)

    def action_space(self) -> ActionSpace:
        o = self.options
        grammar = o.grammar or (actions_grammar(o.actions) if o.actions else None)
        description = o.action_description
        if o.actions:
            description += "\nValid actions: " + ", ".join(o.actions)
        if o.actions_info:
            description += "\nThe valid actions are listed after each observation."
        examples = o.examples or o.actions[:4]
        return ActionSpace(
            description=description, grammar=grammar, examples=examples, finish=o.finish
        )

    def _observe(self, obs: Any, info: dict[str, Any]) -> str:
        self._last_obs = str(obs)
        key = self.options.actions_info
        text = self._last_obs
        if key and isinstance(info.get(key), list | tuple):
            self._valid = [str(a) for a in info[key]]
            text += f"\nValid actions: {', '.join(self._valid)}"
        self._listed(info)
        return text

    def _listed(self, info: dict[str, Any]) -> dict[str, Any]:
        """`info` stating the valid actions for the next step (lbi.envs.base.valid_actions), where
        `actions_info` names them: the agent's grammar or check then follows them step by step."""
        if self.options.actions_info and self._valid is not None:
            info[VALID_ACTIONS] = list(self._valid)
        return info

    def _make_with(self, kwargs: dict[str, Any]) -> None:
        """Make the wrapped game again when a task's constructor arguments differ."""
        if kwargs == self._made_with:
            return
        if self._remake is None:
            raise EnvError(f"{self.name}: setup.make_kwargs needs a game made from its id (gym:ID)")
        if self.gym_env is not None:
            self.gym_env.close()
        self.gym_env, self._made_with = None, None  # a failed remake leaves nothing to close
        self.gym_env = self._remake(kwargs)
        self._made_with = dict(kwargs)

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        options = dict(task.setup)
        if "seed" in options:
            seed = int(options.pop("seed"))
        kwargs = options.pop("make_kwargs", None) or {}
        if not isinstance(kwargs, dict):
            raise EnvError(f"{self.name}: setup.make_kwargs must be a mapping, got {kwargs!r}")
        self._make_with(kwargs)
        obs, info = self.gym_env.reset(
            seed=seed if seed is not None else 0, options=options or None
        )
        info = dict(info or {})
        self._valid, self._return = (list(self.options.actions) or None), 0.0
        return self._observe(obs, info), info

    def _invalid(self, action: str) -> str | None:
        if not isinstance(action, str) or not action.strip():
            return "Error: empty action."
        if not self._regex.fullmatch(action.strip()):
            return (
                f"Error: {action.strip()!r} is not an action (it must match {self._regex.pattern})."
            )
        if self._valid is not None and action.strip().lower() not in {
            a.lower() for a in self._valid
        }:
            return (
                f"Error: {action.strip()!r} is not a valid action. Valid: {', '.join(self._valid)}"
            )
        return None

    def step(self, action: str) -> StepResult:
        bad = self._invalid(action)
        if bad:  # nothing happened: the same actions are valid next
            return bad, 0.0, False, False, self._listed({"error": True})
        try:
            obs, reward, terminated, truncated, info = self.gym_env.step(action.strip())
        except Exception as e:  # the wrapped env rejected the action: tell the agent, go on
            error = f"Error: {type(e).__name__}: {e}"
            return error, 0.0, False, False, self._listed({"error": True})
        info = dict(info or {})
        text = self._observe(obs, info)
        if self._error.search(self._last_obs):
            info["error"] = True
        self._return += float(reward)
        info["return"] = self._return
        o = self.options
        if o.success_info is None and o.success_score is None:
            return text, float(reward), bool(terminated), bool(truncated), info
        info["env_reward"] = float(reward)
        won = (o.success_info is not None and bool(info.get(o.success_info))) or (
            o.success_score is not None and self._return >= o.success_score
        )
        done = bool(terminated or truncated)
        info["success"] = won if done else False
        return text, float(won) if done else 0.0, bool(terminated), bool(truncated), info

    def digest_input(self) -> str:
        """What `state_digest` hashes: the game's own `state_digest()`, else the observation
        (`lbi envs check` shows where two of them differ)."""
        digest = getattr(self.gym_env, "state_digest", None)
        return str(digest() if callable(digest) else self._last_obs)

    def state_digest(self) -> str:
        return hashlib.sha256(self.digest_input().encode()).hexdigest()[:16]

    def close(self) -> None:
        if self.gym_env is not None:
            self.gym_env.close()

    def suites(self) -> list[str]:
        return []

    def load_suite(self, name: str) -> list[Task]:
        raise EnvError(f"{self.name} has no shipped suites; bring one: lbi eval --suite FILE.jsonl")

    def sample_tasks(self) -> list[Task]:
        return list(self._tasks)


def read_options(cls: type[Opts], config: Config, family: str) -> Opts:
    """`env_options.<family>` as `cls`, or one `EnvError` line naming the bad key."""
    try:
        return cls.model_validate(config.env_options.get(family, {}))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise EnvError(f"bad env_options.{family}.{where}: {first['msg']}") from None


@register_env("gym")
def make_gym_env(arg: str, config: Config) -> GymTextEnv:
    """`gym:ID`: any registered Gymnasium environment with text observations and actions."""
    opts = read_options(GymOptions, config, "gym")
    if not arg:
        raise EnvError("gym needs a Gymnasium id: --env gym:ID (or gym:module:ID)")
    try:
        import gymnasium
    except ImportError:
        raise EnvError("gym:ID needs gymnasium: pip install 'lbi[gym]'") from None
    opts.docs = opts.docs or opts.docs_dir
    if not opts.docs:
        raise EnvError(
            f"gym:{arg} needs its documentation: --set env_options.gym.docs=FILE_OR_FOLDER"
        )

    def make(extra: dict[str, Any]) -> Any:
        kwargs = {**opts.kwargs, **extra}
        try:
            return gymnasium.make(arg, **kwargs)
        except (gymnasium.error.Error, ModuleNotFoundError) as e:
            raise EnvError(f"gym:{arg}: {one_line(e)}") from None
        except Exception as e:  # the game's own constructor refused its arguments
            raise EnvError(f"gym:{arg}: making it with {kwargs} failed: {one_line(e)}") from e

    return GymTextEnv(None, name=f"gym:{arg}", docs_dir=opts.docs, options=opts, remake=make)
