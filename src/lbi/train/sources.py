"""Where training chats come from: a run's kept examples, other runs, or chat files.

Gold trajectories (`lbi.pipeline.gold`) and outside data enter training the same way: as
OpenAI-chat JSONL (`{"messages": [...]}` a line, what `lbi export --format openai` writes) or
as another run's kept examples, rendered as the agent sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.pipeline.export import example_to_chats
from lbi.pipeline.synth import action_space, kept_examples
from lbi.train.data import load_chat_jsonl
from lbi.train.options import TrainError
from lbi.types import Example

if TYPE_CHECKING:
    from lbi.envs.base import ActionSpace
    from lbi.run import RunContext


def chats_from_examples(examples: Iterable[Example], space: ActionSpace) -> list[dict[str, Any]]:
    return [c for ex in examples for c in example_to_chats(ex, space, bool(space.tools))]


def chats_from_run(ctx: RunContext) -> list[dict[str, Any]]:
    return chats_from_examples(kept_examples(ctx), action_space(ctx))


def chats_from_files(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        for n, row in enumerate(load_chat_jsonl(path), 1):
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or not any(m.get("role") == "assistant" for m in msgs):
                raise TrainError(f"{path}:{n}: a chat needs a messages list with an assistant turn")
            rows.append(row)
    return rows
