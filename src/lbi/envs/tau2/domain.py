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

from tau2.data_model.message import AssistantMessage, Message, ToolCall, UserMessage  # noqa: E402
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
    "UserMessage",
    "get_domain",
]

DOMAINS = ("airline", "retail", "mock")
UNSUPPORTED = {
    "telecom": "its tasks need the simulated user to call tools on their own phone (user-side "
    "tools and a user database), which this wrapper's text-only user simulator does not do",
}
GREETING = "Hi! How can I help you today?"  # tau2's orchestrator opens every conversation so
STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
QUICK = 10


def user_guidelines() -> str:
    return (DATA_DIR / "tau2" / "user_simulator" / "simulation_guidelines.md").read_text()


@dataclass
class Score:
    reward: float
    info: dict[str, Any]


class Domain:
    """Per-process, read-only facts about one domain; `fresh_env()` is the only factory."""

    def __init__(self, name: str) -> None:
        if name in UNSUPPORTED:
            raise EnvError(f"tau2 domain {name!r} is not supported: {UNSUPPORTED[name]}")
        if name not in DOMAINS:
            raise EnvError(f"unknown tau2 domain {name!r}; known: {', '.join(DOMAINS)}")
        self.name = name
        self.module = importlib.import_module(f"tau2.domains.{name}.environment")
        env = self.module.get_environment()
        self._pristine = pickle.dumps(env.tools.db, protocol=pickle.HIGHEST_PROTOCOL)
        self.policy: str = env.get_policy()
        self.tools = {t.name: t for t in env.get_tools()}
        self.tool_types = {n: env.tools.tool_type(n) for n in self.tools}

    def fresh_env(self, solo_mode: bool = False) -> Tau2Environment:
        env: Tau2Environment = self.module.get_environment(db=pickle.loads(self._pristine))
        return env

    @cached_property
    def tasks(self) -> dict[str, Tau2Task]:
        return {t.id: t for t in self.module.get_tasks()}

    def split(self, name: str) -> list[str]:
        splits: dict[str, list[str]] = (
            self.module.get_tasks_split() if hasattr(self.module, "get_tasks_split") else {}
        )
        return list(splits.get(name, []))

    def is_write(self, tool: str) -> bool:
        """Tools the package marks as writes (they change the database)."""
        return self.tool_types.get(tool) == ToolType.WRITE

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

    def reference(self, task: Tau2Task) -> list[str]:
        """The gold actions, the gold information said to the customer, then done."""
        ec = task.evaluation_criteria
        acts = [a for a in (ec.actions or []) if a.requestor == "assistant"] if ec else []
        ref = [format_tool_action(a.name, a.arguments) for a in acts]
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
        return [base, f"{base}-quick", *([f"{base}-test"] if self.split("test") else [])]

    def load_suite(self, name: str) -> list[Task]:
        """`tau2-D`: every task; `-quick`: the first ten; `-test`: the package's test split."""
        base = f"tau2-{self.name}"
        tasks = list(self.tasks.values())
        if name == f"{base}-quick":
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
