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

from lbi.tokens import prompt_tokens

if TYPE_CHECKING:
    from lbi.agents.react import EpisodeSettings


@dataclass
class Shape:
    """What one rung of the ladder shows."""

    settings: EpisodeSettings
    earlier: dict[int, list[str]] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    middle: bool = False  # observations cut in the middle rather than at the end


def ladder(
    settings: EpisodeSettings,
    earlier: dict[int, list[str]],
    examples: list[str],
    retrieved: list[str] | None = None,
) -> Iterator[Shape]:
    """The prompt as it is, then smaller and smaller versions of it. `examples` are this
    step's examples not shown at earlier steps, `retrieved` all of them: once the earlier
    steps' go, this step shows all it retrieved."""
    shape = Shape(settings, dict(earlier), list(examples))
    yield shape
    while shape.settings.history_steps > 1:
        fewer = replace(shape.settings, history_steps=shape.settings.history_steps // 2)
        shape = replace(shape, settings=fewer)
        yield shape
    if shape.earlier:
        every = list(dict.fromkeys(retrieved if retrieved is not None else examples))
        shape = replace(shape, earlier={}, examples=every)
        yield shape
    while shape.examples:
        shape = replace(shape, examples=shape.examples[:-1])
        yield shape
    while shape.settings.obs_chars > 200:
        s = shape.settings
        shorter = replace(
            s,
            obs_chars=s.obs_chars // 2,
            result_chars=max(80, min(s.result_chars, s.obs_chars // 8)),
        )
        shape = replace(shape, settings=shorter, middle=True)
        yield shape


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
