"""The environment contract, in Gymnasium's shape, and the registry that finds environments.

Text in, text out: observations and actions are strings. A bad action never raises: it comes
back as an observation with `info["error"] = True`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config


@dataclass
class ActionSpace:
    """How to tell the model what it may do, and how to constrain it."""

    description: str  # goes into the SYSTEM prompt
    # A GBNF rule body for one action, e.g. `[^\n]+`; the agent wraps it in REASON/ACTION.
    grammar: str | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function schemas, for tool-use envs
    examples: list[str] = field(default_factory=list)
    # The action that ends an episode with an empty answer: the evaluation's "floor" policy.
    finish: str | None = None


StepResult = tuple[str, float, bool, bool, dict[str, Any]]


@runtime_checkable
class Environment(Protocol):
    name: str
    # How many episodes of this environment may run at once (instances are per episode).
    max_concurrency: int

    def docs(self) -> list[Doc]: ...

    def action_space(self) -> ActionSpace: ...

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]: ...

    def step(self, action: str) -> StepResult: ...

    def state_digest(self) -> str: ...

    def close(self) -> None: ...

    # Benchmark suites the environment ships, and example tasks for the checker.
    def suites(self) -> list[str]: ...

    def load_suite(self, name: str) -> list[Task]: ...

    def sample_tasks(self) -> list[Task]: ...


class EnvError(RuntimeError):
    """An environment could not be made or started (missing data, bad option)."""


EnvFactory = Callable[[str, "Config"], Environment]  # (argument after the colon, config)

_FACTORIES: dict[str, EnvFactory] = {}
_LAZY: dict[str, str] = {
    "sql": "lbi.envs.sql.env",
    "toy": "lbi.envs.toy",
    "miniwob": "lbi.envs.web.miniwob",
    "site": "lbi.envs.web.site",
    "tau2": "lbi.envs.tau2_env",
    "mcp": "lbi.envs.mcp_env",
    "desktop": "lbi.envs.desktop.env",
}
_DESCRIPTIONS: dict[str, str] = {
    "sql": "SQL over the 20 Spider-dev databases (SQLite, or any SQLAlchemy URL); sql:NAME for one",
    "toy": "a tiny key-value store shipped for tests and demos",
    "miniwob": "MiniWoB++ (125 tasks) via BrowserGym on Debian Chromium; miniwob.NAME for one",
    "site": "any local website (a datasette demo shop by default); options url, docs_dir, db",
    "tau2": "tau2 customer-service domains (tau2.airline, tau2.retail, ...) with a simulated user",
    "mcp": "any MCP server over stdio or streamable HTTP (a SQLite test server by default)",
    "desktop": "LibreOffice Calc/Writer and Mousepad under Xvfb, seen through AT-SPI",
}


def register_env(prefix: str, description: str = "") -> Callable[[EnvFactory], EnvFactory]:
    def deco(factory: EnvFactory) -> EnvFactory:
        _FACTORIES[prefix] = factory
        if description:
            _DESCRIPTIONS[prefix] = description
        return factory

    return deco


def list_envs() -> dict[str, str]:
    return {k: _DESCRIPTIONS.get(k, "") for k in sorted(set(_FACTORIES) | set(_LAZY))}


def make_env(spec: str, config: Config) -> Environment:
    prefix, _, arg = spec.partition(":")
    if "." in prefix and prefix.split(".")[0] in (_FACTORIES.keys() | _LAZY.keys()):
        prefix, arg = prefix.split(".", 1)[0], prefix.split(".", 1)[1] + (":" + arg if arg else "")
    if prefix not in _FACTORIES and prefix in _LAZY:
        try:
            importlib.import_module(_LAZY[prefix])
        except ImportError as e:
            raise EnvError(f"environment {spec!r} needs a missing package ({e.name})") from None
    if prefix not in _FACTORIES:
        raise EnvError(f"unknown environment {spec!r}; known: {', '.join(list_envs())}")
    return _FACTORIES[prefix](arg, config)
