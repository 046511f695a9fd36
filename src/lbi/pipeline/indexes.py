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
from lbi.types import Doc, Example, Record, Task, Trajectory, Verdict, content_id

SOURCE_FILE = "source.key"  # beside an index: the `source_key` it was built from

if TYPE_CHECKING:
    from lbi.embed.base import Embedder
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

    folder = index_dir(ctx, kind)
    embedder = ctx.embedder()
    key = source_key(ctx, kind)
    if key and (folder / SOURCE_FILE).is_file() and (folder / SOURCE_FILE).read_text() == key:
        try:  # built from the store as it is now, with these settings: nothing to read again
            return ExampleIndex.load(folder, embedder)
        except RetrievalError:
            pass
    index = _build_or_extend(ctx, kind, folder, embedder)
    if key:
        (folder / SOURCE_FILE).write_text(key)
    return index


def source_key(ctx: RunContext, kind: str) -> str:
    """What an index of the run's own records was built from: the store's state and the settings
    that decide which records are kept and how they are indexed. '' for docs, which may come
    from the environment rather than the store."""
    if kind == "docs":
        return ""
    settings = ctx.config.model_dump_json(
        include={"model", "extra_models", "synth", "embed", "retrieval", "roles"}
    )
    kinds = (Example, Verdict) if kind == "examples" else (Task, Trajectory)
    return content_id("index-source", kind, ctx.store.state(*kinds), settings)


def _build_or_extend(ctx: RunContext, kind: str, folder: Path, embedder: Embedder) -> ExampleIndex:
    from lbi.retrieval.errors import RetrievalError
    from lbi.retrieval.examples import ExampleIndex
    from lbi.retrieval.text_index import TextIndex

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
