"""The environment contract, in Gymnasium's shape, and the registry that finds environments.

Text in, text out: observations and actions are strings. A bad action never raises: it comes
back as an observation with `info["error"] = True`. An environment whose valid actions change
from step to step may list them for the next step in the `info` of `reset` and `step`, under
`info["valid_actions"]` (`VALID_ACTIONS`, a list of strings): the agent is then held to that
list at that step (see `valid_actions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lbi.registry import Registry
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
    # What language an action's text is written in, for exports that say so (the Agent Data
    # Protocol's CodeAction.language): "sql", "python" (BrowserGym's calls), or plain "text".
    language: str = "text"


StepResult = tuple[str, float, bool, bool, dict[str, Any]]

# The `info` key (of `reset` and `step`) listing the actions valid at the next step.
VALID_ACTIONS = "valid_actions"


def valid_actions(info: object) -> list[str] | None:
    """The actions `info` lists as valid at the next step, or None where it lists none.

    Optional: an environment whose valid actions change from step to step (a text adventure's
    exits, a game's legal moves) puts them in `info["valid_actions"]`, a list of strings, after
    each `reset` and `step`. A model that takes grammars is then constrained to exactly those
    strings at that step (`actions_grammar`); for any other, an answer outside the list is an
    error observation and is not run. The list replaces `ActionSpace.grammar` for that step.
    Absent, empty, or not a list of strings: no list, the action space alone applies. lbi does
    not add the list to the prompt: show it in the observation too, as the gym adapter does."""
    listed = info.get(VALID_ACTIONS) if isinstance(info, Mapping) else None
    if not isinstance(listed, list | tuple) or not listed:
        return None
    return list(listed) if all(isinstance(a, str) for a in listed) else None


def gbnf_literal(text: str) -> str:
    return json.dumps(text)  # GBNF string literals use JSON-style escapes


def actions_grammar(actions: Sequence[str]) -> str:
    """A GBNF rule body that allows exactly these actions."""
    return " | ".join(map(gbnf_literal, actions))


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


def seeds_vary(env: object) -> bool:
    """Whether `reset(task, seed)` makes another instance of the task for another seed (MiniWoB
    draws a new utterance and page). An environment that does not say so (optional attribute
    `seeds_vary`) is taken as deterministic: data made on a task at any seed is that task's own."""
    return bool(getattr(env, "seeds_vary", False))


def reset_calls_model(env: object) -> bool:
    """Whether `reset` itself asks a model (tau2's simulated customer speaks first): the
    pre-flight (lbi.envs.preflight) then only builds such an environment, never resets it, so
    it spends nothing. Optional attribute `reset_calls_model`; absent means no."""
    return bool(getattr(env, "reset_calls_model", False))


def cannot_replay(env: object) -> str | None:
    """Why `env`'s states cannot be restored by a reset and a replay of the actions that led to
    them (what LATS needs), or None when they can. Optional attribute `replays` (a bool, with an
    optional `replays_why`); absent, an environment whose reset asks a model cannot (a simulated
    user's answers are not the environment's to reproduce), any other can. A replay that gives
    another state digest than the first time is caught where it happens (lbi.agents.replay)."""
    declared = getattr(env, "replays", None)
    if declared is False:
        return str(getattr(env, "replays_why", "") or "it says its replays are not reproducible")
    if declared is None and reset_calls_model(env):
        return "its reset asks a model (a simulated user), whose answers a replay cannot reproduce"
    return None


class EnvError(RuntimeError):
    """An environment could not be made or started (missing data, bad option)."""


def one_line(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message (Playwright and
    others append multi-line call logs that say nothing more to a user)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


EnvFactory = Callable[[str, "Config"], Environment]  # (argument after the colon, config)

ENVS: Registry[EnvFactory] = Registry(
    kind="environment",
    group="lbi.envs",
    error=EnvError,
    builtins={
        "sql": "lbi.envs.sql.env",
        "toy": "lbi.envs.toy",
        "miniwob": "lbi.envs.web.miniwob",
        "site": "lbi.envs.web.site",
        "tau2": "lbi.envs.tau2.env",
        "mcp": "lbi.envs.mcp.env",
        "gym": "lbi.envs.gym_adapter",
        "openenv": "lbi.envs.openenv",
        "repo": "lbi.envs.repo.env",
        "desktop": "lbi.envs.desktop.env",
    },
    descriptions={
        "sql": "SQL over the 20 Spider-dev databases (SQLite, or any SQLAlchemy URL); sql:NAME for one",
        "toy": "a tiny key-value store shipped for tests and demos",
        "miniwob": "MiniWoB++ (125 tasks) via BrowserGym on Debian Chromium; miniwob.NAME for one",
        "site": "any local website (a datasette demo shop by default); options url, docs_dir, db",
        "tau2": "tau2 customer-service domains (tau2.airline, tau2.retail, ...) with a simulated user",
        "mcp": "any MCP server over stdio or streamable HTTP (a SQLite test server by default)",
        "openenv": "any OpenEnv server (openenv:URL), one WebSocket session per episode",
        "repo": "any Python repository in a bubblewrap sandbox (options path, setup, test_cmd)",
        "desktop": "LibreOffice Calc/Writer and Mousepad under Xvfb, seen through AT-SPI",
        "gym": "any Gymnasium env with text observations and actions: gym:ID, docs in env_options.gym.docs",
    },
    dotted=True,
)


# The suites each built-in environment ships, for `lbi envs list` (listing builds no environment;
# tests/test_preflight.py compares this with the environments' own `suites()`).
SHIPPED_SUITES = {
    "sql": "spider-dev-23",
    "toy": "toy-5",
    "miniwob": "miniwob-all, miniwob-quick",
    "site": "site-db (a served db; a url has none)",
    "tau2": "tau2-DOMAIN, tau2-DOMAIN-quick (and -test, -full where the domain has them)",
    "mcp": "mcp-library, mcp-library-quick (the built-in server; else from its tasks_file)",
    "repo": "repo-bugs, repo-bugs-local",
    "desktop": "desktop-basic",
    "gym": "none",
}


def register_env(prefix: str, description: str = "") -> Callable[[EnvFactory], EnvFactory]:
    return ENVS.register(prefix, description)


def list_envs() -> dict[str, str]:
    return ENVS.names()


def make_env(spec: str, config: Config) -> Environment:
    """The environment `spec` names. Any exception from its constructor (a plug-in's, a user's
    module) becomes one `EnvError` line naming the environment and the cause."""
    from lbi.config import ConfigError
    from lbi.models.base import ModelError

    try:
        env: Environment = ENVS.make(spec, config)
    except (EnvError, ConfigError, ModelError):
        raise
    except Exception as e:
        raise EnvError(f"environment {spec} could not be made: {one_line(e)}") from e
    return env


@dataclass(frozen=True)
class EnvSpec:
    """A picklable environment factory (spec and config): what another process or machine needs
    to build the environment itself. An environment may declare `resources` (Ray's names, e.g.
    `{"num_cpus": 1}`) that each instance needs on a cluster."""

    spec: str
    config: Config

    def __call__(self) -> Environment:
        return make_env(self.spec, self.config)
