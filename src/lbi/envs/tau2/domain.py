"""One tau2 domain as data: its policy, tools, tasks, a pristine database, and its evaluator.

We import only the domain modules and the evaluator components, never `tau2.registry`: the
registry imports litellm (7+ s, and it tries to fetch a price list from the network), which
none of this needs. tau2 logs through loguru at DEBUG; its loggers are disabled here.

Loading a domain database from JSON takes 0.3-0.8 s, so each process parses it once and
every episode gets a fresh unpickled copy.
"""

from __future__ import annotations

import importlib
import pickle
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from loguru import logger

from lbi.envs.base import EnvError
from lbi.envs.tools.actions import DONE, RESPOND, format_tool_action
from lbi.envs.tools.schema import function_schema
from lbi.types import Task

logger.disable("tau2")  # before any tau2 import: its DEBUG logging would flood our output

from tau2.data_model.message import (  # noqa: E402
    AssistantMessage,
    Message,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from tau2.data_model.tasks import RewardType  # noqa: E402
from tau2.data_model.tasks import Task as Tau2Task  # noqa: E402
from tau2.environment.environment import Environment as Tau2Environment  # noqa: E402
from tau2.environment.toolkit import ToolType  # noqa: E402
from tau2.evaluator.evaluator_action import ActionEvaluator  # noqa: E402
from tau2.evaluator.evaluator_communicate import CommunicateEvaluator  # noqa: E402
from tau2.evaluator.evaluator_env import EnvironmentEvaluator  # noqa: E402
from tau2.utils.utils import DATA_DIR  # noqa: E402

__all__ = [
    "AssistantMessage",
    "Domain",
    "Message",
    "Tau2Task",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
    "get_domain",
]

DOMAINS = ("airline", "retail", "telecom", "mock")
# How a gold reference asks the customer to act on their phone (one tool call per message).
ASK_USER = "Please do this on your phone:"
GREETING = "Hi! How can I help you today?"  # tau2's orchestrator opens every conversation so
STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
QUICK = 10


def user_guidelines(tools: bool = False) -> str:
    """tau2's guidelines for its simulated user; the `_tools` variant where the user has tools."""
    name = "simulation_guidelines_tools.md" if tools else "simulation_guidelines.md"
    return (DATA_DIR / "tau2" / "user_simulator" / name).read_text()


@dataclass
class Score:
    reward: float
    info: dict[str, Any]


class Domain:
    """Per-process, read-only facts about one domain; `fresh_env()` is the only factory."""

    def __init__(self, name: str) -> None:
        if name not in DOMAINS:
            raise EnvError(f"unknown tau2 domain {name!r}; known: {', '.join(DOMAINS)}")
        self.name = name
        self.module = importlib.import_module(f"tau2.domains.{name}.environment")
        env = self.module.get_environment()
        self._pristine = pickle.dumps(env.tools.db, protocol=pickle.HIGHEST_PROTOCOL)
        self.policy: str = env.get_policy()
        self.tools = {t.name: t for t in env.get_tools()}
        self.tool_types = {n: env.tools.tool_type(n) for n in self.tools}
        # Dual control (telecom): the customer's own tools, on the customer's own database.
        self.user_tools = {t.name: t for t in env.get_user_tools()} if env.user_tools else {}
        self.user_tool_types = {n: env.user_tools.tool_type(n) for n in self.user_tools}
        self._pristine_user = (
            pickle.dumps(env.user_tools.db, protocol=pickle.HIGHEST_PROTOCOL)
            if env.user_tools
            else None
        )

    def fresh_env(self, solo_mode: bool = False) -> Tau2Environment:
        kwargs: dict[str, Any] = {"db": pickle.loads(self._pristine)}
        if self._pristine_user is not None:
            kwargs["user_db"] = pickle.loads(self._pristine_user)
        env: Tau2Environment = self.module.get_environment(**kwargs)
        return env

    @cached_property
    def tasks(self) -> dict[str, Tau2Task]:
        """Every task the package ships (telecom: 2,285; its `base` split is the benchmark)."""
        return {t.id: t for t in self.module.get_tasks(None)}

    def split(self, name: str) -> list[str]:
        splits: dict[str, list[str]] = (
            self.module.get_tasks_split() if hasattr(self.module, "get_tasks_split") else {}
        )
        return list(splits.get(name, []))

    def is_write(self, tool: str, requestor: str = "assistant") -> bool:
        """Tools the package marks as writes (they change the agent's or the user's database)."""
        types = self.user_tool_types if requestor == "user" else self.tool_types
        return types.get(tool) == ToolType.WRITE

    def may_change_state(self, tool: str) -> bool:
        """Anything not marked read/think might change the database (used to skip copies)."""
        return self.tool_types.get(tool) not in (ToolType.READ, ToolType.THINK)

    def schemas(self) -> list[dict[str, Any]]:
        out = [self.tools[n].openai_schema for n in sorted(self.tools)]
        out.append(
            function_schema(
                RESPOND,
                "Send a message to the customer; the observation is their reply.",
                {"content": {"type": "string", "description": "the message to the customer"}},
            )
        )
        out.append(
            function_schema(DONE, "End the conversation when the customer's request is handled.")
        )
        return out

    def user_schemas(self) -> list[dict[str, Any]]:
        return [self.user_tools[n].openai_schema for n in sorted(self.user_tools)]

    def gold_actions(self, task: Tau2Task) -> list[Any]:
        ec = task.evaluation_criteria
        return list(ec.actions or []) if ec else []

    def reference(self, task: Tau2Task, actions: list[Any] | None = None) -> list[str]:
        """The gold actions in order (each of the customer's asked of them in a message, as the
        one tool call to make on their phone), the gold information said to them, then done."""
        ec = task.evaluation_criteria
        ref = []
        for a in self.gold_actions(task) if actions is None else actions:
            call = format_tool_action(a.name, a.arguments)
            if a.requestor == "user":
                call = format_tool_action(RESPOND, {"content": f"{ASK_USER}\n{call}"})
            ref.append(call)
        info = list(ec.communicate_info or []) if ec else []
        if info:
            ref.append(
                format_tool_action(
                    RESPOND, {"content": "Here is what you asked for: " + "; ".join(info)}
                )
            )
        return [*ref, format_tool_action(DONE)]

    def lbi_task(self, t: Tau2Task) -> Task:
        """A benchmark Task: the agent is told only its role; the customer brings the request."""
        ec = t.evaluation_criteria
        gold = (
            {"tau2_task_id": t.id, "reward_basis": sorted(b.value for b in ec.reward_basis)}
            if ec
            else {}
        )
        instruction = (
            f"You are the {self.name} customer service agent. Help the customer who contacts you, "
            "following the policy."
        )
        return Task(
            env=f"tau2.{self.name}", name=f"tau2-{self.name}-{t.id}", instruction=instruction,
            origin="benchmark", setup={"tau2_task_id": t.id}, gold=gold, reference=self.reference(t),
        )  # fmt: skip

    def suites(self) -> list[str]:
        base = f"tau2-{self.name}"
        full = [f"{base}-full"] if len(self._base_ids()) < len(self.tasks) else []
        return [base, f"{base}-quick", *([f"{base}-test"] if self.split("test") else []), *full]

    def _base_ids(self) -> list[str]:
        return self.split("base") or list(self.tasks)

    def load_suite(self, name: str) -> list[Task]:
        """`tau2-D`: the package's `base` split (every task, but for telecom's 114 of 2,285);
        `-quick`: its first ten; `-test`: the package's test split; `-full`: every task."""
        base = f"tau2-{self.name}"
        keep_base = set(self._base_ids())
        tasks = [t for t in self.tasks.values() if t.id in keep_base]
        if name == f"{base}-full":
            tasks = list(self.tasks.values())
        elif name == f"{base}-quick":
            tasks = tasks[:QUICK]
        elif name == f"{base}-test" and self.split("test"):
            keep = set(self.split("test"))
            tasks = [t for t in tasks if t.id in keep]
        elif name != base:
            raise EnvError(
                f"unknown suite {name!r} for tau2.{self.name}; known: {', '.join(self.suites())}"
            )
        return [self.lbi_task(t) for t in tasks]

    def evaluate(self, task: Tau2Task, messages: list[Message]) -> Score:
        """tau2's own scoring (`evaluate_simulation` with EvaluationType.ALL): the product of
        the DB/env-assertion, action and communicate components the task's reward_basis
        names. NL assertions need an LLM judge and are not in any airline/retail basis."""
        ec = task.evaluation_criteria
        if ec is None:
            return Score(1.0, {"note": "no evaluation criteria"})
        basis = set(ec.reward_basis)
        if RewardType.NL_ASSERTION in basis:
            return Score(0.0, {"note": "NL assertions (LLM-judged) are not evaluated by lbi"})
        reward, parts = 1.0, {}
        try:
            if basis & {RewardType.DB, RewardType.ENV_ASSERTION}:
                parts["env"] = EnvironmentEvaluator.calculate_reward(
                    self.fresh_env, task, messages
                ).reward
            if RewardType.ACTION in basis:
                parts["action"] = ActionEvaluator.calculate_reward(task, messages).reward
            if RewardType.COMMUNICATE in basis:
                parts["communicate"] = CommunicateEvaluator.calculate_reward(task, messages).reward
        except Exception as e:  # e.g. a trajectory the evaluator cannot replay
            return Score(0.0, {"error": f"{type(e).__name__}: {str(e)[:200]}"})
        for value in parts.values():
            reward *= value
        return Score(reward, {"reward_basis": sorted(b.value for b in basis), **parts})


_DOMAINS: dict[str, Domain] = {}
_LOCK = threading.Lock()


def get_domain(name: str) -> Domain:
    with _LOCK:
        if name not in _DOMAINS:
            _DOMAINS[name] = Domain(name)
        return _DOMAINS[name]
