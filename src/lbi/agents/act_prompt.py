"""The act prompt: the paper's sections as the agent's messages, from the episode so far.

`build_messages` is what the agent (`lbi.agents.react.ModelPolicy`) sends at each step and what
training export (`lbi.pipeline.export`) writes, so the two stay the same prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbi.agents.native_turns import split_last_answer, tool_turns
from lbi.envs.base import ActionSpace
from lbi.prompts import render
from lbi.tokens import clip_middle
from lbi.types import Step

if TYPE_CHECKING:
    from lbi.agents.react import EpisodeSettings


def clip(text: str, n: int) -> str:
    """At most `n` characters, then how many more there were."""
    return text if len(text) <= n else text[:n] + f"\n... [{len(text) - n} more characters]"


def tools_text(space: ActionSpace) -> str:
    if not space.tools:
        return ""
    from lbi.envs.tools.schema import describe_tools

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
    reflections: Sequence[str] = (),
    earlier: Mapping[int, Sequence[str]] | None = None,
    middle: bool = False,
) -> list[dict[str, Any]]:
    """The paper's prompt sections, laid out so that each step's prompt extends the last one:
    SYSTEM / OBJECTIVE / START / HISTORY, then ADDITIONAL INFO (`examples`: those retrieved for
    this step that the prompt does not show yet) and OBSERVATION. `earlier` holds the examples
    shown at earlier steps, by step (lbi.agents.shown): they stay in HISTORY where they were
    first shown, numbered on from there. A server's prefix cache (llama.cpp, vLLM, hosted prompt
    caching) then reuses the system prompt, objective, start, earlier history and earlier
    examples instead of processing them again at each step (bench/local_agent.py measures it).

    START is the episode's first observation (a database's schema, the task's page), kept for
    the whole episode: with only the latest observation, a model that got an error saw the error
    and no longer the schema, and repeated its last action (Qwen2.5-Coder-0.5B, measured). An
    action that repeats an earlier one is marked in HISTORY with the step it repeats.
    REFLECTIONS (Reflexion, LATS: lessons written after failed tries) stay the same for a whole
    episode, so they come before HISTORY. `middle` cuts long observations in the middle rather
    than at the end (a prompt shrunk to fit the context: lbi.agents.fit)."""
    shorten = clip_middle if middle else clip
    system = render(
        "act_system",
        env=env,
        action_description=space.description,
        tools_text=tools_text(space),
        native_tools=native_tools,
    )
    # Native tools: the last answer's calls and results go back as tool messages (native_turns).
    cut = split_last_answer(history) if native_tools else len(history)
    if cut < len(history):
        observation = history[cut].observation
    shown = history[:cut]
    first = len(shown) - len(shown[-settings.history_steps :])
    start = history[0].observation if history else observation
    blocks = dict(earlier or {})
    number = iter(range(1, 1_000_000))
    seen: dict[str, int] = {}
    entries = []
    for n, s in enumerate(shown, 1):
        if n > first:
            result = shorten(s.next_observation, settings.result_chars)
            worked = [(next(number), e) for e in blocks.pop(n - 1, ())]
            entries.append(
                {"n": n, "action": s.action, "result": result, "repeats": seen.get(s.action)}
                | {"examples": worked}
            )
        seen.setdefault(s.action, n)
    # Examples of steps that are now tool turns (native tools) are shown with this step's.
    late = [e for k in sorted(blocks) if k >= len(shown) for e in blocks[k]]
    user = render(
        "act_user",
        examples=[(next(number), e) for e in [*late, *examples]],
        instruction=instruction,
        start=shorten(start, settings.obs_chars),
        reflections=list(reflections),
        history=entries,
        observation="(as at START above)"
        if not history
        else shorten(observation, settings.obs_chars),
    )
    turns = tool_turns(history[cut:], settings.obs_chars)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}, *turns]
