"""The run's retrieval indexes, persisted under `runs/NAME/index/`.

`examples`: the kept examples (agentic retrieval); `docs`: documentation chunks (the RAG
baseline); `distill`: raw synthesized trajectories, no backward construction (the distillation
baseline). Building is incremental: records already in a saved index are not embedded again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lbi.pipeline.chunking import chunk_docs
from lbi.pipeline.synth import kept_examples, synth_trajectories
from lbi.types import Doc, Record

if TYPE_CHECKING:
    from lbi.retrieval.examples import ExampleIndex
    from lbi.run import RunContext

KINDS = ("examples", "docs", "distill")


def records_for(ctx: RunContext, kind: str) -> list[Record]:
    if kind == "examples":
        return list(kept_examples(ctx))
    if kind == "docs":
        stored = ctx.store.all(Doc)
        if stored:
            return list(stored)
        env = ctx.env_factory()()
        try:
            return list(chunk_docs(env.docs(), ctx.config.synth.chunk_tokens))
        finally:
            env.close()
    if kind == "distill":
        return [t for t in synth_trajectories(ctx) if t.steps]
    raise ValueError(f"unknown index kind {kind!r}; use {', '.join(KINDS)}")


def index_dir(ctx: RunContext, kind: str) -> Path:
    return ctx.dir / "index" / kind


def build_index(ctx: RunContext, kind: str) -> ExampleIndex:
    from lbi.retrieval.examples import ExampleIndex
    from lbi.retrieval.text_index import TextIndex

    folder = index_dir(ctx, kind)
    records = records_for(ctx, kind)
    embedder = ctx.embedder()
    if (folder / "records.jsonl").is_file():
        index = ExampleIndex.load(folder, embedder)
        wanted = {r.id for r in records}
        if all(i in wanted for i in index.text.ids):  # only additions since the last build
            new = [r for r in records if r.id not in index]
            if new:
                index.add(new)
                index.save(folder)
            return index
    index = ExampleIndex(TextIndex.from_config(embedder, ctx.config))
    index.add(records)
    index.save(folder)
    return index
