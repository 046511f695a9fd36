"""LATS (Zhou et al. 2024, Language Agent Tree Search) as an agent policy: Monte-Carlo tree
search over actions with the LLM as the policy (candidate actions sampled at each expansion),
as the value function (a `value` score of each new state) and as its own critic (a reflection
on every failed end, shown to every later call).

A node is the state a path of decisions reaches from the task's start. Environments have no
undo: a node's state is restored by reset + replaying its path (lbi.agents.replay), checked by
state digest, and an environment that cannot replay is refused in one line. Every replay is an
episode of the one loop (`agents.react.drive`). Budgets (eval.lats): `max_nodes` nodes created
and `max_calls` model calls of any kind; the search stops at either and settles.

One iteration: select a leaf by UCT; expand it (sample candidates, take each one step from the
leaf's state, score each new state); simulate from the best child with the episode's own policy
to the episode's end; judge that end (the agent's own verdict by default, or the environment's
reward: eval.lats.failed_by); back the verdict up the path; after a failure, reflect. The search
ends at the first end judged a success. The trajectory returned replays that end once more
(else the last end reached, else the best path so far); every judged end is in `attempts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lbi.agents.env_errors import guarded
from lbi.agents.react import Decision, EpisodeSettings, ModelPolicy, Policy, StepContext, drive
from lbi.agents.reflect import attempt, reflect, self_evaluate, spent, value
from lbi.agents.replay import ReplayPolicy, check_replay, require_replay
from lbi.config import LatsConfig
from lbi.envs.base import Environment
from lbi.models.base import ChatRequest, ChatResponse
from lbi.types import Attempt, Step, Task, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


class OutOfCalls(Exception):
    """The episode's model-call budget is spent: ends the search, not the run."""


class CappedDoor:
    """The door, refusing any call past `limit` (all kinds counted together)."""

    def __init__(self, door: Any, limit: int) -> None:
        self.door, self.limit, self.used = door, limit, 0
        self.name, self.capabilities = door.name, door.capabilities
        self.config = getattr(door, "config", None)  # ModelPolicy reads it

    async def chat(self, request: ChatRequest, *, stage: str = "default") -> ChatResponse:
        if self.used >= self.limit:
            raise OutOfCalls
        self.used += 1
        return await self.door.chat(request, stage=stage)


class Limited:
    """A policy's first decision per turn, for at most `allowance` turns; it keeps them."""

    def __init__(self, policy: Policy, allowance: int) -> None:
        self.policy, self.allowance = policy, allowance
        self.made: list[Decision] = []

    async def decide(self, ctx: StepContext) -> list[Decision] | None:
        if len(self.made) >= self.allowance:
            return None
        got = await self.policy.decide(ctx)
        if not got:
            return None
        self.made.append(got[0])
        return [got[0]]


@dataclass(eq=False)
class Node:
    parent: Node | None = None
    decision: Decision | None = None  # what led here from the parent, replayed as it was
    step: Step | None = None  # what it did the first time (with the state digest it reached)
    observation: str = ""
    terminal: bool = False
    reward: float = 0.0  # the environment's, at a terminal node; never shown to the agent
    total: float = 0.0  # values backed up through this node (its own estimate first)
    visits: int = 0
    dead: bool = False  # nothing left to search below it
    lessons: int = -1  # how many reflections there were when it was last expanded
    children: list[Node] = field(default_factory=list)

    def path(self) -> list[Node]:
        """The nodes from the root's first child down to this one."""
        out, node = [], self
        while node.parent is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def q(self) -> float:
        return self.total / self.visits if self.visits else 0.0


def uct(child: Node, parent_visits: int, c: float) -> float:
    return child.q() + c * math.sqrt(math.log(parent_visits + 1) / (child.visits + 1))


def best_child(node: Node, c: float) -> Node | None:
    live = [ch for ch in node.children if not ch.dead]
    return max(live, key=lambda ch: uct(ch, node.visits, c)) if live else None


def select(root: Node, c: float, lessons: int) -> Node | None:
    """The node to expand next: down by UCT among the children with something left below. A
    node whose children are all searched is expanded again if reflections were written since
    its last expansion (the model may now propose other actions there), else it is done."""
    while not root.dead:
        node = root
        while node.children:
            child = best_child(node, c)
            if child is None:
                if node.lessons < lessons:
                    return node
                node.dead = True
                break
            node = child
        else:
            if not node.terminal:
                return node
            node.dead = True
    return None


def backup(node: Node | None, reward: float) -> None:
    while node is not None:
        node.total += reward
        node.visits += 1
        node = node.parent


def greedy(root: Node) -> Node:
    node = root
    while node.children:
        node = max(node.children, key=Node.q)
    return node


class Search:
    def __init__(
        self,
        door: ModelDoor,
        env: Environment,
        task: Task,
        settings: EpisodeSettings,
        cfg: LatsConfig,
    ) -> None:
        self.meter, self.door = door, CappedDoor(door, cfg.max_calls)
        self.env, self.task, self.cfg = env, task, cfg
        self.settings = replace(settings, record_digests=True)
        self.space = env.action_space()
        self.nodes = 0  # created, the root not counted
        self.reflections: list[str] = []
        self.attempts: list[Attempt] = []
        self.start = ""
        self.last_end: Node | None = None

    async def run(self) -> Trajectory:
        self.start, _ = await guarded(self.env, self.env.reset, self.task, self.settings.seed)
        root = Node(observation=self.start)
        settled = None
        try:
            while settled is None and self.nodes < self.cfg.max_nodes:
                leaf = select(root, self.cfg.exploration, len(self.reflections))
                if leaf is None:
                    break
                settled = await self.iterate(leaf)
        except OutOfCalls:
            pass
        final = settled or self.last_end or greedy(root)
        traj = await self.replay(final.path())
        traj.attempts, traj.nodes = self.attempts, self.nodes
        return traj

    async def iterate(self, leaf: Node) -> Node | None:
        """One select-expand-simulate-judge round; the end it reached if judged a success."""
        before = spent(self.meter)
        children = await self.expand(leaf)
        if not children:
            return None
        end = await self.simulate(max(children, key=Node.q))
        if not end.terminal:  # the node budget ran out on the way
            return None
        self.last_end, end.dead = end, True
        steps = [n.step for n in end.path() if n.step is not None]
        if self.cfg.failed_by == "reward":
            judged, why = end.reward >= 1.0, f"the environment's reward was {end.reward:g}"
        else:
            judged, why = await self.judge(steps)
        backup(end, 1.0 if judged else 0.0)
        lesson = ""
        try:
            if not judged:
                lesson = await reflect(
                    self.door, self.env.name, self.task, self.start, steps,
                    self.reflections, why, self.settings,
                )  # fmt: skip
                self.reflections.append(lesson)
        finally:  # recorded even when the call budget ran out before the reflection
            verdict = judged if self.cfg.failed_by == "self" else None
            self.attempts.append(
                attempt(
                    len(self.attempts), steps, end.reward >= 1.0, before, self.meter,
                    judged=verdict, judge_reason=why, reflection=lesson,
                )
            )  # fmt: skip
        return end if judged else None

    async def judge(self, steps: list[Step]) -> tuple[bool, str]:
        env, task = self.env.name, self.task
        return await self_evaluate(self.door, env, task, self.start, steps, self.settings)

    async def expand(self, node: Node) -> list[Node]:
        """Sample candidate actions at `node`, take each new one, score the states they reach."""
        path = node.path()
        history = [n.step for n in path if n.step is not None]
        ctx = StepContext(
            self.env.name, self.task.instruction, history, node.observation, len(path)
        )
        node.lessons = len(self.reflections)
        taken = {ch.decision.action for ch in node.children if ch.decision is not None}
        candidates: dict[str, Decision] = {}
        for i in range(min(self.cfg.children, self.cfg.max_nodes - self.nodes)):
            sampled = replace(self.settings, temperature=self.cfg.temperature, sample=i)
            policy = ModelPolicy(self.door, self.space, self.task, sampled, None, self.reflections)  # type: ignore[arg-type]
            got = await policy.decide(ctx)
            if got and got[0].action not in taken:
                candidates.setdefault(got[0].action, got[0])
        children = []
        for decision in candidates.values():
            if self.nodes >= self.cfg.max_nodes:
                break
            child = await self.take(node, decision)
            steps = [*history, child.step] if child.step is not None else history
            child.total = await value(
                self.door, self.env.name, self.task, self.start, steps,
                self.reflections, self.settings,
            )  # fmt: skip
            child.visits = 1
            children.append(child)
        return children

    async def take(self, node: Node, decision: Decision) -> Node:
        """Restore `node` by replay, take `decision` there: the child it reaches."""
        path = node.path()
        traj = await self.replay(path, ReplayPolicy([decision]))
        return self.grow(node, decision, traj, len(path))

    async def simulate(self, child: Node) -> Node:
        """From `child`, the episode's own policy to the end (or the node budget)."""
        allowance = self.cfg.max_nodes - self.nodes
        if child.terminal or allowance <= 0:
            return child
        act = ModelPolicy(self.door, self.space, self.task, self.settings, None, self.reflections)  # type: ignore[arg-type]
        rollout = Limited(act, allowance)
        path = child.path()
        traj = await self.replay(path, rollout)
        node = child
        for n, decision in enumerate(rollout.made):
            node = self.grow(node, decision, traj, len(path) + n)
        return node

    def grow(self, parent: Node, decision: Decision, traj: Trajectory, index: int) -> Node:
        """The node that `traj.steps[index]` reached, as a new child of `parent`."""
        step = traj.steps[index]
        last = index == len(traj.steps) - 1
        ended = last and (traj.terminated or traj.stop_reason == "truncated")
        child = Node(
            parent=parent,
            decision=decision,
            step=step,
            observation=step.next_observation,
            terminal=ended or index + 1 >= self.settings.max_steps,
            reward=traj.reward if ended else 0.0,
        )
        parent.children.append(child)
        self.nodes += 1
        return child

    async def replay(self, path: list[Node], then: Policy | None = None) -> Trajectory:
        """Reset, replay `path` (checked by digest), then `then` until the episode ends."""
        decisions = [n.decision for n in path if n.decision is not None]
        policy = ReplayPolicy(decisions, then)
        traj = await drive(self.env, self.task, self.door.name, self.settings, policy)
        check_replay(self.env.name, traj, [n.step for n in path if n.step is not None])
        return traj


async def run_lats(
    door: ModelDoor,
    env: Environment,
    task: Task,
    settings: EpisodeSettings,
    cfg: LatsConfig,
) -> Trajectory:
    require_replay(env)
    return await Search(door, env, task, settings, cfg).run()
