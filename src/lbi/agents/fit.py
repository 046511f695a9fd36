"""The act prompt made to fit the model's context (issue 27, item 3).

A prompt whose tokens plus the answer's budget exceed the endpoint's context is refused by
every server (or, with Ollama, silently cut from the front). Before each act call the prompt is
counted with the model's own tokenizer where lbi has it (`lbi.tokens.counter_for`; else about
four characters a token, with a stated margin) and, while it does not fit, shrunk one rung at a
time in this order: older HISTORY steps (the number shown halves), the examples shown at earlier
steps, this step's examples from the lowest-ranked, and last the observations, cut in the middle
(the start and the end stay) to half their length each rung. Each rung gives a new prompt; a
prompt that fits from the first rung is the one the agent always sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lbi.tokens import Counter, estimate_tokens

if TYPE_CHECKING:
    from lbi.agents.react import EpisodeSettings

# Chat-template tokens around each message, and around the whole conversation.
PER_MESSAGE = 4
MARGIN = 32
# Where tokens are only estimated (no tokenizer), the estimate is raised by this much: it runs
# ~1.5x low on accessibility trees (lbi.tokens).
ESTIMATE_SLACK = 1.5


@dataclass
class Shape:
    """What one rung of the ladder shows."""

    settings: EpisodeSettings
    earlier: dict[int, list[str]] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    middle: bool = False  # observations cut in the middle rather than at the end
    rung: int = 0


def ladder(
    settings: EpisodeSettings,
    earlier: dict[int, list[str]],
    examples: list[str],
    retrieved: list[str] | None = None,
) -> Iterator[Shape]:
    """The prompt as it is, then smaller and smaller versions of it. `examples` are this
    step's examples not shown at earlier steps, `retrieved` all of them: once the earlier
    steps' go, this step shows all it retrieved."""
    rung = 0
    shape = Shape(settings, dict(earlier), list(examples))
    yield shape
    while shape.settings.history_steps > 1:
        rung += 1
        fewer = replace(shape.settings, history_steps=shape.settings.history_steps // 2)
        shape = replace(shape, settings=fewer, rung=rung)
        yield shape
    if shape.earlier:
        rung += 1
        every = list(dict.fromkeys(retrieved if retrieved is not None else examples))
        shape = replace(shape, earlier={}, examples=every, rung=rung)
        yield shape
    while shape.examples:
        rung += 1
        shape = replace(shape, examples=shape.examples[:-1], rung=rung)
        yield shape
    while shape.settings.obs_chars > 200:
        rung += 1
        s = shape.settings
        shorter = replace(
            s,
            obs_chars=s.obs_chars // 2,
            result_chars=max(80, min(s.result_chars, s.obs_chars // 8)),
        )
        shape = replace(shape, settings=shorter, middle=True, rung=rung)
        yield shape


def prompt_tokens(messages: list[dict[str, Any]], count: Counter) -> int:
    total = sum(count(str(m.get("content") or "")) + PER_MESSAGE for m in messages)
    if count is estimate_tokens:
        total = int(total * ESTIMATE_SLACK)
    return total + MARGIN


def clip_middle(text: str, n: int) -> str:
    """At most about `n` characters: the start and the end, with what was cut counted."""
    if len(text) <= n:
        return text
    head, tail = n - n // 3, n // 3
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


def fitted(
    build: Callable[[Shape], list[dict[str, Any]]],
    shapes: Iterable[Shape],
    limit: int | None,
    answer: int,
    count: Callable[[str], int],
) -> tuple[Shape, list[dict[str, Any]]]:
    """The first shape whose prompt and answer fit `limit` tokens (the smallest one if none
    does: the endpoint's refusal is then the episode's record)."""
    shape = messages = None
    for shape in shapes:
        messages = build(shape)
        if limit is None or prompt_tokens(messages, count) + answer <= limit:
            break
    assert shape is not None and messages is not None
    return shape, messages
