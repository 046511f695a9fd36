"""The vocabulary: typed records that flow between stages.

Every record has a content-hash id derived from the fields that define it, so a stage that
produces the same record twice stores it once, and a rerun can skip ids it already has.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def content_id(*parts: Any, n: int = 16) -> str:
    """A stable short hash of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


class Record(BaseModel):
    """Base for stored records: `kind` names the table, `id` is a content hash."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = "record"
    id: str = ""

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.compute_id())

    def compute_id(self) -> str:
        raise NotImplementedError


class Doc(Record):
    """A chunk of an environment's documentation."""

    kind: ClassVar[str] = "doc"
    env: str
    source: str
    title: str = ""
    text: str
    # Where tasks derived from this doc start (e.g. {"db": "concert_singer"}).
    setup: dict[str, Any] = Field(default_factory=dict)

    def compute_id(self) -> str:
        return content_id("doc", self.env, self.source, self.title, self.text, self.setup)


TaskOrigin = Literal["docs", "explore", "benchmark", "user"]


class Task(Record):
    """Something to do in an environment. `setup` says where to start (e.g. which database)."""

    kind: ClassVar[str] = "task"
    env: str
    instruction: str
    setup: dict[str, Any] = Field(default_factory=dict)
    origin: TaskOrigin = "docs"
    doc_id: str | None = None
    # Benchmark tasks carry what success is checked against (e.g. gold SQL); a reference
    # solution (list of actions) lets the scripted policy replay it in tests.
    gold: dict[str, Any] = Field(default_factory=dict)
    reference: list[str] = Field(default_factory=list)
    name: str = ""

    def compute_id(self) -> str:
        return content_id("task", self.env, self.instruction, self.setup, self.origin)


class Step(BaseModel):
    """One agent step: what it saw, why, what it did, and what came back."""

    model_config = ConfigDict(extra="forbid")
    index: int
    observation: str
    reason: str = ""
    action: str
    next_observation: str
    reward: float = 0.0
    error: bool = False
    raw: str = ""  # the model's full answer
    thinking: str = ""  # what a thinking model wrote before it (never read as the answer)
    digest: str = ""  # environment state digest after the step (recorded for replay checks)
    # The exact request the model was sent for this step, so training data matches it.
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    # What other actors did during the step, e.g. tau2's simulated customer on their phone:
    # [{"actor": "user", "action": ..., "result": ...}] (from the env's info["other_actions"]).
    other_actions: list[dict[str, Any]] = Field(default_factory=list)


class Attempt(BaseModel):
    """One earlier try inside an episode of a multi-try policy: a Reflexion trial, or a branch
    LATS searched to its end. What the agent judged of it, what it wrote after a failed try,
    and what the try cost are kept beside the environment's own verdict (`success`)."""

    model_config = ConfigDict(extra="forbid")
    index: int
    steps: list[Step] = Field(default_factory=list)
    success: bool = False  # the environment's reward, recorded; never shown to the agent
    judged: bool | None = None  # the agent's own verdict (self-evaluation), None if not asked
    judge_reason: str = ""
    reflection: str = ""  # written after a failed try; the next tries see it
    calls: int = 0  # model calls this try made (acting, judging, reflecting)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Trajectory(Record):
    """A whole episode (o_0, a_0, o_1, ..., o_n), kept whether or not it succeeded."""

    kind: ClassVar[str] = "trajectory"
    task_id: str
    env: str
    instruction: str
    model: str
    seed: int = 0
    sample: int = 0
    variant: str = "none"
    steps: list[Step] = Field(default_factory=list)
    reward: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    stop_reason: str = ""
    final_digest: str = ""
    # Multi-try policies (lbi.agents.reflexion, lbi.agents.lats): every try, in order; `steps`
    # above are those of the try the policy settled on. Empty for a single-try policy.
    attempts: list[Attempt] = Field(default_factory=list)
    nodes: int = 0  # LATS: tree nodes created (bounded by eval.lats.max_nodes)

    def compute_id(self) -> str:
        return content_id("traj", self.task_id, self.model, self.seed, self.sample, self.variant)


ExampleStyle = Literal["task", "replicate", "raw"]


class Example(Record):
    """An instruction paired with the sub-trajectory steps[i..j] (inclusive) that achieves it."""

    kind: ClassVar[str] = "example"
    env: str
    instruction: str
    style: ExampleStyle
    trajectory_id: str
    task_id: str
    doc_id: str | None = None
    i: int
    j: int
    policy: str
    steps: list[Step]
    setup: dict[str, Any] = Field(default_factory=dict)

    def compute_id(self) -> str:
        return content_id(
            "ex", self.trajectory_id, self.i, self.j, self.style, self.policy, self.instruction
        )


class Verdict(Record):
    """One judge's verdict on one example, per criterion with a reason."""

    kind: ClassVar[str] = "verdict"
    example_id: str
    judge: str
    criteria: dict[str, bool]
    reasons: dict[str, str] = Field(default_factory=dict)
    accept: bool
    # A graded judge's 1-5 score per criterion (`synth.combine: graded`); empty for a yes/no one.
    scores: dict[str, int] = Field(default_factory=dict)

    def compute_id(self) -> str:
        return content_id("verdict", self.example_id, self.judge)


class EvalResult(Record):
    """One evaluation episode: a benchmark task, a retrieval variant, a seed."""

    kind: ClassVar[str] = "eval_result"
    suite: str
    variant: str
    task_id: str
    task_name: str = ""
    model: str
    seed: int
    success: bool
    reward: float
    steps: int
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    trajectory_id: str = ""
    # Multi-try policies: how many tries, and whether the first one succeeded (pass@1); the
    # final try's verdict is `success`. 0 / None for a single-try policy.
    trials: int = 0
    first_success: bool | None = None
    reflections: int = 0
    nodes: int = 0
    # The content id of the records the variant retrieved from (`ExampleIndex.fingerprint`); ""
    # for a variant that retrieves nothing. Part of the id, so an episode run on other data (the
    # run's dataset grew since) is not taken for done.
    data: str = ""

    def compute_id(self) -> str:
        on = (self.data,) if self.data else ()
        return content_id(
            "eval", self.suite, self.variant, self.task_id, self.model, self.seed, *on
        )


class Failure(Record):
    """A unit of work that failed for a reason outside it (a model call that failed after its
    retries, a context overflow, an environment that raised): an episode, a doc chunk, a
    trajectory's labels or an example's verdict. Stored instead of the unit's output, so the
    next run of the same command retries exactly these; dropped when the unit succeeds."""

    kind: ClassVar[str] = "failure"
    stage: str  # tasks | rollout | backward | filter | eval
    unit: str  # the id the unit's output would have (or its done-mark)
    label: str = ""  # the unit for people: "chunk 'Writing'", "task set-a, variant none"
    error: str  # what kind of failure: retries exhausted, context overflow, env error, ...
    message: str  # the error's own words (the server's message where it gave one)

    def compute_id(self) -> str:
        return content_id("failure", self.stage, self.unit)
