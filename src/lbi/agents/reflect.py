"""The model calls of the multi-try policies: judge a try, reflect on a failed one, score a state.

Each is one call through the door with a prompt kind of its own (`self_eval`, `reflect`,
`value`), so the accounting tells them apart and the scripted test double answers them. The
agent sees only what the environment showed it, never the benchmark's verdict. Each answer's
parser sits beside the call that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from lbi.agents.react import EpisodeSettings
from lbi.models.base import ChatRequest, ChatResponse
from lbi.models.json_answer import check_schema, extract_json
from lbi.prompts import render
from lbi.types import Attempt, Step, Task

VERDICT = {
    "type": "object",
    "required": ["success", "reason"],
    "properties": {"success": {"type": "boolean"}, "reason": {"type": "string"}},
}
SCORE = {
    "type": "object",
    "required": ["score", "reason"],
    "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
}
REFLECTION_CHARS = 800  # a reflection is a few sentences; a longer answer is cut to this
UNREAD_VALUE = 0.5  # an unreadable score neither favours nor prunes the state


class Door(Protocol):
    name: str

    async def chat(self, request: ChatRequest, *, stage: str = "default") -> ChatResponse: ...


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + " ..."


def _context(
    env: str, task: Task, start: str, steps: Sequence[Step], settings: EpisodeSettings
) -> dict[str, Any]:
    shown = [
        {"action": s.action, "result": _clip(s.next_observation, settings.result_chars)}
        for s in steps
    ]
    return {
        "env": env,
        "instruction": task.instruction,
        "start": _clip(start, settings.obs_chars),
        "steps": shown,
    }


def _meta(task: Task, steps: Sequence[Step], **more: Any) -> dict[str, Any]:
    """What a test double may read: the actions taken and the task's reference."""
    return {"actions": [s.action for s in steps], "reference": task.reference, **more}


async def _judge(
    door: Door,
    prompt: str,
    schema: dict[str, Any],
    kind: str,
    task: Task,
    steps: Sequence[Step],
    settings: EpisodeSettings,
) -> str:
    """A short structured judgement of the steps so far (a verdict or a value)."""
    request = ChatRequest(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=160,
        seed=settings.seed,
        json_schema=schema,
        kind=kind,
        meta=_meta(task, steps),
    )
    return (await door.chat(request, stage=settings.stage)).text


async def self_evaluate(
    door: Door, env: str, task: Task, start: str, steps: Sequence[Step], settings: EpisodeSettings
) -> tuple[bool, str]:
    """The agent's own verdict on a finished try: (succeeded, why)."""
    prompt = render("self_eval", **_context(env, task, start, steps, settings))
    return read_verdict(await _judge(door, prompt, VERDICT, "self_eval", task, steps, settings))


def read_verdict(text: str) -> tuple[bool, str]:
    """An unreadable verdict counts as a failure: another try is the safe side."""
    try:
        value = extract_json(text)
        check_schema(value, VERDICT)
    except ValueError as e:
        return False, f"unreadable self-evaluation ({e})"
    return bool(value["success"]), str(value["reason"]).strip()


async def reflect(
    door: Door,
    env: str,
    task: Task,
    start: str,
    steps: Sequence[Step],
    earlier: Sequence[str],
    why: str,
    settings: EpisodeSettings,
) -> str:
    """What the agent writes after a failed try; the next tries see it."""
    context = _context(env, task, start, steps, settings)
    prompt = render("reflect", **context, earlier=list(earlier), why=why)
    request = ChatRequest(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=settings.max_tokens,
        seed=settings.seed,
        kind="reflect",
        meta=_meta(task, steps, earlier=list(earlier)),
    )
    text = (await door.chat(request, stage=settings.stage)).text.strip()
    return _clip(text, REFLECTION_CHARS) or "(the reflection was empty)"


async def value(
    door: Door,
    env: str,
    task: Task,
    start: str,
    steps: Sequence[Step],
    reflections: Sequence[str],
    settings: EpisodeSettings,
) -> float:
    """The model's estimate, in [0, 1], that going on from these steps accomplishes the task."""
    context = _context(env, task, start, steps, settings)
    prompt = render("value", **context, reflections=list(reflections))
    return read_score(await _judge(door, prompt, SCORE, "value", task, steps, settings))


def read_score(text: str) -> float:
    try:
        got = extract_json(text)
        check_schema(got, SCORE)
    except ValueError:
        return UNREAD_VALUE
    return min(1.0, max(0.0, float(got["score"]) / 10.0))


def spent(door: object) -> dict[str, Any]:
    """What a metered door (lbi.eval.metered) has counted so far; zeros for a plain door."""
    fields = ("calls", "prompt_tokens", "completion_tokens", "cost_usd")
    return {f: getattr(door, f, 0) for f in fields}


def attempt(
    index: int, steps: list[Step], success: bool, before: dict[str, Any], door: object, **more: Any
) -> Attempt:
    """One try's record, with what it cost since `before` (a `spent` of the door)."""
    now = spent(door)
    return Attempt(
        index=index, steps=steps, success=success, **{k: now[k] - before[k] for k in now}, **more
    )
