"""The ReAct agent loop: observe, ask the model for `REASON/ACTION`, act, repeat.

One episode = one `Trajectory`. Each step is handed to `on_step` as soon as it happens (the
rollout stage stores it), together with the exact messages and tool schemas the model was sent,
so training data later matches what the model saw. Unreadable answers and invalid actions become
error observations; the episode goes on. Where the environment lists the valid actions for the
next step (`info["valid_actions"]`, lbi.envs.base.valid_actions), that step's grammar or check
is built from the list.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from lbi.agents.act_prompt import build_messages, clip
from lbi.agents.action_check import ActionCheck, action_check, listed_check
from lbi.agents.answer import after_end, read_actions, unreadable
from lbi.agents.env_errors import guarded
from lbi.agents.fit import Shape, fitted, ladder
from lbi.agents.parse import ParseError, react_grammar
from lbi.agents.shown import ShownExamples
from lbi.envs.base import ActionSpace, Environment, actions_grammar, valid_actions
from lbi.models.base import ChatRequest, ContextOverflow
from lbi.models.fitting import prepared
from lbi.tokens import counter_for, prompt_tokens
from lbi.types import Step, Task, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


@dataclass
class EpisodeSettings:
    max_steps: int = 8
    temperature: float = 0.0
    seed: int = 0
    sample: int = 0
    variant: str = "none"
    constrain: bool = True  # constrain the answer to the action grammar where the backend can
    # A REASON of up to 600 characters (agents/parse.py) plus an action: ~150 + ~100 tokens.
    max_tokens: int = 384
    stage: str = "rollout"
    obs_chars: int = 3000  # observations are truncated to this in the prompt
    history_steps: int = 10  # most recent steps shown in HISTORY
    result_chars: int = 300  # each HISTORY result is cut to this
    # An answer repeating an earlier failed action is asked once more, at most this many times
    # per episode (a model that always repeats costs at most this many extra calls).
    retry_repeats: int = 1
    record_digests: bool = False  # state digest after every step, for replay checks
    # Worked examples one episode's prompt keeps (lbi.agents.shown) before the earlier steps'
    # are dropped: a step's worth and most of another at the default retrieval budget (2,000
    # tokens a step), within an 8k context with the rest of the prompt.
    example_tokens: int = 3600


@dataclass
class StepContext:
    env: str
    instruction: str
    history: list[Step]
    observation: str
    step: int
    # The actions the environment listed as valid for this step (None: it listed none).
    valid_actions: list[str] | None = None


class StepRetriever(Protocol):
    """Finds worked examples for the current step (see `lbi.agents.retrieval`)."""

    async def retrieve(
        self, ctx: StepContext, door: ModelDoor, settings: EpisodeSettings
    ) -> list[str]: ...


def new_trajectory(
    task: Task, model: str, settings: EpisodeSettings, stop_reason: str = ""
) -> Trajectory:
    """The (still empty) trajectory of one episode; its id is fixed by task, model, seed, sample
    and variant, so a rerun of the same episode lands on the same record."""
    return Trajectory(
        task_id=task.id,
        env=task.env,
        instruction=task.instruction,
        model=model,
        seed=settings.seed,
        sample=settings.sample,
        variant=settings.variant,
        stop_reason=stop_reason,
    )


@dataclass
class Decision:
    """One action a policy chose, and what to record alongside it."""

    action: str
    reason: str = ""
    raw: str = ""
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    error: str | None = None  # the answer was unreadable or cut: this is the observation, no step
    thinking: str = ""  # a thinking model's reasoning before its answer (kept, not parsed)


class Policy(Protocol):
    """Chooses what to do next: one action, or several (every tool call of one model answer, run
    in order); None ends the episode (a fixed script that ran out)."""

    async def decide(self, ctx: StepContext) -> list[Decision] | None: ...


class ModelPolicy:
    """The LLM agent: examples from the retriever, the prompt sections, one model call."""

    def __init__(
        self,
        door: ModelDoor,
        space: ActionSpace,
        task: Task,
        settings: EpisodeSettings,
        retriever: StepRetriever | None = None,
        reflections: Sequence[str] = (),
    ) -> None:
        self.door, self.space, self.task, self.settings = door, space, task, settings
        self.retriever = retriever
        self.reflections = list(reflections)  # shown in the prompt (Reflexion, LATS)
        self.native_tools = bool(space.tools) and door.capabilities.tools
        config = getattr(door, "config", None)
        self._checking = config is None or config.models.openai.check_actions
        self.grammar, self.check = self._constraint(space.grammar, lambda: action_check(space))
        self._retries = 0  # re-asks of repeated failing actions in this episode
        self._shown = ShownExamples(settings.example_tokens)

    def _constraint(
        self, rule: str | None, check: Callable[[], ActionCheck | None]
    ) -> tuple[str | None, ActionCheck | None]:
        """The answer grammar for the action rule where the backend takes one; else the check
        that text actions get instead (None where neither applies)."""
        grammar = None
        if self.settings.constrain and rule and self.door.capabilities.grammar:
            grammar = None if self.native_tools else react_grammar(rule)
        unchecked = grammar is not None or self.native_tools or not self._checking
        return grammar, None if unchecked else check()

    def _context(self) -> int | None:
        return self.door.capabilities.context_length

    def _answer_tokens(self, asked: int) -> int:
        """What the door will ask the model for (its per-role limit, thinking room)."""
        budget = getattr(self.door, "answer_tokens", None)
        return int(budget("act", asked)) if callable(budget) else asked

    def _fit(
        self,
        ctx: StepContext,
        earlier: dict[int, list[str]],
        examples: list[str],
        retrieved: list[str],
        limit: int | None,
        answer: int,
    ) -> tuple[Shape, list[dict[str, Any]]]:
        def build(shape: Shape) -> list[dict[str, Any]]:
            return build_messages(
                ctx.env,
                self.space,
                ctx.instruction,
                ctx.history,
                ctx.observation,
                shape.examples,
                shape.settings,
                self.native_tools,
                self.reflections,
                shape.earlier,
                shape.middle,
            )

        shapes = ladder(self.settings, earlier, examples, retrieved)
        return fitted(build, shapes, limit, answer, counter_for(self.door))

    def _for_step(self, ctx: StepContext) -> tuple[str | None, ActionCheck | None]:
        """This step's grammar and check: from the actions the environment listed, if it did."""
        listed = ctx.valid_actions
        if not listed:
            return self.grammar, self.check
        return self._constraint(actions_grammar(listed), lambda: listed_check(self.space, listed))

    async def decide(self, ctx: StepContext) -> list[Decision]:
        settings = self.settings
        grammar, check = self._for_step(ctx)
        examples = await self.retriever.retrieve(ctx, self.door, settings) if self.retriever else []
        at = len(ctx.history)
        new = self._shown.show(at, examples, max(0, at - settings.history_steps))
        answer = self._answer_tokens(settings.max_tokens)
        await prepared(self.door)
        fit = functools.partial(self._fit, ctx, self._shown.earlier(at), new, examples)
        shape, messages = fit(self._context(), answer)
        # A test double reads what the prompt shows; left out when empty, so the cache keys of
        # single-try episodes stay what they were.
        lessons = {"reflections": self.reflections} if self.reflections else {}
        request = ChatRequest(
            messages=messages,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            seed=settings.seed,
            sample=settings.sample,
            grammar=grammar,
            tools=self.space.tools if self.native_tools else None,
            kind="act",
            meta={
                "step": ctx.step,
                "reference": self.task.reference,
                "fallback": self.space.examples,
                **lessons,
            },
        )
        try:
            resp = await self.door.chat(request, stage=settings.stage)
        except ContextOverflow:
            # The endpoint's context is smaller than it said (or than counted): once more,
            # with the prompt fitted to three quarters of what was sent.
            sent = prompt_tokens(messages, counter_for(self.door)) + answer
            shape, messages = fit(sent * 3 // 4, answer)
            request = replace(request, messages=messages)
            resp = await self.door.chat(request, stage=settings.stage)
        # What the prompt sent shows is what later steps build on.
        visible = max(0, at - shape.settings.history_steps)
        shown = {**shape.earlier, at: shape.examples}
        self._shown.blocks = {k: v for k, v in shown.items() if v and k >= visible}
        try:
            answers, error = read_actions(resp), None
        except ParseError as e:  # unreadable or cut at the token limit: nothing is executed
            answers, error = [("", resp.text.strip()[:200])], unreadable(e, self.native_tools)
        failed = _failed_before(ctx.history, answers)
        if (
            failed is not None
            and error is None
            and not self.native_tools
            and self._retries < settings.retry_repeats
        ):
            self._retries += 1
            # The same failing action again tells the agent nothing new: ask once more, saying
            # so. Greedy small models otherwise repeat it to the step limit (issue 26).
            messages = _with_note(messages, failed)
            request = replace(request, messages=messages, meta={**request.meta, "retry": 1})
            resp = await self.door.chat(request, stage=settings.stage)
            try:
                answers = read_actions(resp)
            except ParseError as e:
                answers, error = [("", resp.text.strip()[:200])], unreadable(e, False)
        # A text action outside the action space (or this step's list) is an error, not run.
        return [
            Decision(
                a,
                r,
                resp.text,
                messages,
                request.tools,
                error or (check.error(a) if check is not None else None),
                resp.reasoning,
            )
            for r, a in answers
        ]


def _failed_before(history: list[Step], answers: list[tuple[str, str]]) -> Step | None:
    """The earlier step whose failing action this one-action answer repeats, if any."""
    if len(answers) != 1:
        return None
    action = answers[0][1].strip()
    return next((s for s in history if s.error and s.action.strip() == action), None)


def _with_note(messages: list[dict[str, Any]], failed: Step) -> list[dict[str, Any]]:
    result = clip(failed.next_observation.strip(), 300)
    note = (
        f"\n\nNOTE: your answer repeated the action of step {failed.index + 1}, which failed "
        f"with: {result}\nThe same action fails the same way again. Answer with a different "
        "action."
    )
    out = [dict(m) for m in messages]
    out[-1]["content"] = str(out[-1]["content"]) + note
    return out


class FixedPolicy:
    """A fixed list of actions, then the end: the evaluation's floor policies, replays."""

    def __init__(self, actions: list[str]) -> None:
        self.actions = list(actions)

    async def decide(self, ctx: StepContext) -> list[Decision] | None:
        return [Decision(action=self.actions[ctx.step])] if ctx.step < len(self.actions) else None


async def drive(
    env: Environment,
    task: Task,
    model: str,
    settings: EpisodeSettings,
    policy: Policy,
    on_step: Callable[[Trajectory, Step], None] | None = None,
) -> Trajectory:
    """The one episode loop: reset, then decide, act and record until the episode ends. A turn's
    actions run in order; one that comes after the episode ended is recorded as a tool error."""
    observation, start_info = await guarded(env, env.reset, task, settings.seed)
    # The actions valid at the next step, where the environment lists them.
    valid = valid_actions(start_info)
    traj = new_trajectory(task, model, settings)
    terminated = truncated = False
    for t in range(settings.max_steps):
        ctx = StepContext(env.name, task.instruction, traj.steps, observation, t, valid)
        decisions = await policy.decide(ctx)
        if decisions is None:
            break
        for decision in decisions:
            ended = terminated or truncated
            info: dict[str, Any] = {}
            if decision.error is not None or ended:
                next_obs, reward = decision.error or after_end(decision.action), 0.0
                error = True
            else:
                next_obs, reward, terminated, truncated, info = await guarded(
                    env, env.step, decision.action
                )
                error = bool(info.get("error"))
                valid = valid_actions(info)  # a decision not run leaves the list as it was
            digest = await guarded(env, env.state_digest) if settings.record_digests else ""
            step = Step(
                index=len(traj.steps),
                observation=observation,
                reason=decision.reason,
                action=decision.action,
                next_observation=next_obs,
                reward=float(reward),
                error=error,
                raw=decision.raw,
                thinking=decision.thinking,
                messages=decision.messages or [],
                tools=decision.tools,
                digest=digest,
                other_actions=list(info.get("other_actions") or []),
            )
            traj.steps.append(step)
            if on_step:
                on_step(traj, step)
            observation = next_obs
            if not ended and (terminated or truncated):
                traj.reward = float(reward)
        if terminated or truncated:
            break
    traj.terminated = terminated
    traj.truncated = truncated or not terminated
    traj.stop_reason = "terminated" if terminated else ("truncated" if truncated else "step limit")
    traj.success = traj.reward >= 1.0
    traj.final_digest = await guarded(env, env.state_digest)
    return traj


async def run_episode(
    door: ModelDoor,
    env: Environment,
    task: Task,
    settings: EpisodeSettings,
    retriever: StepRetriever | None = None,
    on_step: Callable[[Trajectory, Step], None] | None = None,
) -> Trajectory:
    """One episode of the LLM agent (see `ModelPolicy`)."""
    policy = ModelPolicy(door, env.action_space(), task, settings, retriever)
    return await drive(env, task, door.name, settings, policy, on_step)
