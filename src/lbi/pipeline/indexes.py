"""The run's retrieval indexes, persisted under `runs/NAME/index/`.

`examples`: the kept examples (agentic retrieval); `docs`: documentation chunks (the RAG
baseline); `distill`: raw synthesized trajectories, no backward construction (the distillation
baseline). Building is incremental: records already in a saved index are not embedded again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lbi.pipeline.chunking import chunk_docs
from lbi.pipeline.synth import iter_kept, synth_trajectories
from lbi.retrieval.records import FILE as RECORDS_FILE
from lbi.types import Doc, Record

if TYPE_CHECKING:
    from lbi.retrieval.examples import ExampleIndex
    from lbi.run import RunContext

KINDS = ("examples", "docs", "distill")


def records_for(ctx: RunContext, kind: str) -> Iterator[Record]:
    """The records of one index kind, streamed (kept examples are decided one at a time)."""
    if kind == "examples":
        yield from iter_kept(ctx)
    elif kind == "docs":
        stored = ctx.store.all(Doc)
        if stored:
            yield from stored
            return
        env = ctx.env_factory()()
        try:
            yield from chunk_docs(env.docs(), ctx.config.synth.chunk_tokens)
        finally:
            env.close()
    elif kind == "distill":
        yield from (t for t in synth_trajectories(ctx) if t.steps)
    else:
        raise ValueError(f"unknown index kind {kind!r}; use {', '.join(KINDS)}")


def index_dir(ctx: RunContext, kind: str) -> Path:
    return ctx.dir / "index" / kind


def build_index(ctx: RunContext, kind: str) -> ExampleIndex:
    """Load the saved index and add what is new, or build it afresh when a record it holds is no
    longer wanted (or none is saved). Records are streamed: memory holds ids, not records."""
    from lbi.retrieval.errors import RetrievalError
    from lbi.retrieval.examples import ExampleIndex
    from lbi.retrieval.text_index import TextIndex

    folder = index_dir(ctx, kind)
    embedder = ctx.embedder()
    if (folder / RECORDS_FILE).is_file():
        try:
            index = ExampleIndex.load(folder, embedder)
        except RetrievalError:
            index = None  # written by an older lbi, or damaged: built again below
        if index is not None:
            wanted = {r.id for r in records_for(ctx, kind)}
            if all(i in wanted for i in index.text.ids):  # only additions since the last build
                if len(wanted) > len(index):
                    index.add(r for r in records_for(ctx, kind) if r.id not in index)
                    index.save(folder)
                return index
    index = ExampleIndex(TextIndex.from_config(embedder, ctx.config))
    index.add(records_for(ctx, kind))
    index.save(folder)
    return index
