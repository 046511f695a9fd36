"""The ReAct agent loop: observe, ask the model for `REASON/ACTION`, act, repeat.

One episode = one `Trajectory`. Each step is handed to `on_step` as soon as it happens (the
rollout stage stores it), together with the exact messages and tool schemas the model was sent,
so training data later matches what the model saw. Unreadable answers and invalid actions become
error observations; the episode goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lbi.agents.answer import after_end, read_actions, unreadable
from lbi.agents.native_turns import split_last_answer, tool_turns
from lbi.agents.parse import ParseError, react_grammar
from lbi.envs.base import ActionSpace, Environment
from lbi.models.base import ChatRequest
from lbi.prompts import render
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
    max_tokens: int = 256
    stage: str = "rollout"
    obs_chars: int = 3000  # observations are truncated to this in the prompt
    history_steps: int = 10  # most recent steps shown in HISTORY
    record_digests: bool = False  # state digest after every step, for replay checks


@dataclass
class StepContext:
    env: str
    instruction: str
    history: list[Step]
    observation: str
    step: int


class StepRetriever(Protocol):
    """Finds worked examples for the current step (see `lbi.agents.retrieval`)."""

    async def retrieve(
        self, ctx: StepContext, door: ModelDoor, settings: EpisodeSettings
    ) -> list[str]: ...


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"\n... [{len(text) - n} more characters]"


def tools_text(space: ActionSpace) -> str:
    if not space.tools:
        return ""
    from lbi.envs.tools import describe_tools

    return describe_tools(space.tools)


def build_messages(
    env: str,
    space: ActionSpace,
    instruction: str,
    history: list[Step],
    observation: str,
    examples: list[str],
    settings: EpisodeSettings,
    native_tools: bool,
) -> list[dict[str, Any]]:
    """The prompt sections: SYSTEM / ADDITIONAL INFO / OBJECTIVE / HISTORY / OBSERVATION."""
    system = render(
        "act_system",
        env=env,
        action_description=space.description,
        tools_text=tools_text(space),
        example_action=space.examples[0] if space.examples else "",
        native_tools=native_tools,
    )
    # Native tools: the last answer's calls and results go back as tool messages (native_turns).
    cut = split_last_answer(history) if native_tools else len(history)
    if cut < len(history):
        observation = history[cut].observation
    recent = history[:cut][-settings.history_steps :]
    user = render(
        "act_user",
        examples=examples,
        instruction=instruction,
        history=[{"action": s.action, "result": _clip(s.next_observation, 300)} for s in recent],
        observation=_clip(observation, settings.obs_chars),
    )
    turns = tool_turns(history[cut:], settings.obs_chars)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}, *turns]


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


async def run_episode(
    door: ModelDoor,
    env: Environment,
    task: Task,
    settings: EpisodeSettings,
    retriever: StepRetriever | None = None,
    on_step: Callable[[Trajectory, Step], None] | None = None,
) -> Trajectory:
    space = env.action_space()
    native_tools = bool(space.tools) and door.capabilities.tools
    grammar = None
    if settings.constrain and space.grammar and door.capabilities.grammar and not native_tools:
        grammar = react_grammar(space.grammar)
    observation, _ = await asyncio.to_thread(env.reset, task, settings.seed)
    traj = new_trajectory(task, door.name, settings)
    terminated = truncated = False
    for t in range(settings.max_steps):
        ctx = StepContext(env.name, task.instruction, traj.steps, observation, t)
        examples = await retriever.retrieve(ctx, door, settings) if retriever else []
        messages = build_messages(
            env.name,
            space,
            task.instruction,
            traj.steps,
            observation,
            examples,
            settings,
            native_tools,
        )
        request = ChatRequest(
            messages=messages,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            seed=settings.seed,
            sample=settings.sample,
            grammar=grammar,
            tools=space.tools if native_tools else None,
            kind="act",
            meta={"step": t, "reference": task.reference, "fallback": space.examples},
        )
        resp = await door.chat(request, stage=settings.stage)
        try:
            answers, failure = read_actions(resp), ""
        except ParseError as e:  # unreadable or cut at the token limit: nothing is executed
            answers, failure = [("", resp.text.strip()[:200])], unreadable(e, native_tools)
        for reason, action in answers:  # every tool call of the answer, in order
            ended = terminated or truncated
            if failure or ended:
                next_obs, reward, error = failure or after_end(action), 0.0, True
            else:
                next_obs, reward, terminated, truncated, info = await asyncio.to_thread(
                    env.step, action
                )
                error = bool(info.get("error"))
            digest = await asyncio.to_thread(env.state_digest) if settings.record_digests else ""
            step = Step(
                index=len(traj.steps),
                observation=observation,
                reason=reason,
                action=action,
                next_observation=next_obs,
                reward=float(reward),
                error=error,
                raw=resp.text,
                messages=messages,
                tools=request.tools,
                digest=digest,
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
    traj.final_digest = await asyncio.to_thread(env.state_digest)
    return traj
