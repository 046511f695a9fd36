"""Resuming a finished synthesis reads none of its records: `lbi synth` on a run that finished
with the same settings and docs, and has no failure to retry, answers from the store's meta
(issue 30). Any change that could mean work (a setting, the docs) runs the stages again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbi.config import Config
from lbi.pipeline.synth import run_all
from lbi.run import RunContext, open_run
from lbi.store import RunStore

COUNTS = ("docs", "tasks", "trajectories", "raw_examples", "kept_examples")


def _synth(cfg: Config, reads: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        ctx = open_run(cfg, "fin")
        try:
            return await run_all(ctx)
        finally:
            await ctx.aclose()

    return asyncio.run(go())


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every bulk read of the store, as (method, record kind)."""
    seen: list[tuple[str, str]] = []
    for name in ("all", "iter", "iter_by", "ids", "fields", "count"):
        original = getattr(RunStore, name)

        def spy(self: RunStore, cls: Any, *a: Any, _o: Any = original, _n: str = name, **k: Any):  # type: ignore[no-untyped-def]
            seen.append((_n, cls.kind))
            return _o(self, cls, *a, **k)

        monkeypatch.setattr(RunStore, name, spy)
    return seen


def test_a_finished_run_is_not_read_again(tmp_path: Path, reads: list[tuple[str, str]]) -> None:
    cfg = Config(env="toy", model="scripted", run_root=str(tmp_path))
    cfg.embed.name = "hash"
    first = _synth(cfg)
    assert first["kept_examples"] > 0
    assert {kind for _, kind in reads} >= {"task", "trajectory", "example", "verdict"}

    reads.clear()
    again = _synth(cfg)
    assert {k: again[k] for k in COUNTS} == {k: first[k] for k in COUNTS}
    assert reads == [("fields", "failure")]  # whether a failure is left to retry, nothing else

    # Another setting that shapes the data: the stages run (and read) again.
    reads.clear()
    cfg.synth.max_steps += 1
    _synth(cfg)
    assert ("all", "example") in reads or ("iter", "example") in reads


@pytest.fixture
def finished(tmp_path: Path) -> Iterator[RunContext]:
    """A toy run whose synthesis finished, opened for more work."""
    cfg = Config(env="toy", model="scripted", run_root=str(tmp_path))
    cfg.embed.name = "hash"
    _synth(cfg)
    ctx = open_run(cfg, "fin")
    try:
        yield ctx
    finally:
        asyncio.run(ctx.aclose())


def test_an_index_of_an_unchanged_run_is_loaded_without_reading_its_records(
    finished: RunContext, reads: list[tuple[str, str]]
) -> None:
    from lbi.pipeline.indexes import build_index
    from lbi.types import Verdict

    ctx = finished
    reads.clear()
    first = build_index(ctx, "examples")
    assert ("iter", "example") in reads and len(first) > 0
    reads.clear()
    again = build_index(ctx, "examples")  # the store has not changed: no record is read
    assert reads == [] and again.fingerprint() == first.fingerprint()
    distill = build_index(ctx, "distill")
    reads.clear()
    assert len(build_index(ctx, "distill")) == len(distill) and reads == []
    # A new verdict may change what is kept: the examples are read (and checked) again.
    ctx.store.put([Verdict(example_id="x", judge="someone", criteria={}, accept=False)])
    reads.clear()
    assert build_index(ctx, "examples").fingerprint() == first.fingerprint()
    assert ("iter", "example") in reads


def test_table_1_counts_the_selected_tasks_without_selecting_them_again(
    finished: RunContext, reads: list[tuple[str, str]]
) -> None:
    from lbi.pipeline.synth import count_synth_tasks, synth_tasks
    from lbi.types import Task

    ctx = finished
    n = len(synth_tasks(ctx))
    reads.clear()
    assert count_synth_tasks(ctx) == n and ("all", "task") not in reads
    ctx.store.put([Task(env="toy", instruction="a task proposed later", origin="docs")])
    assert count_synth_tasks(ctx) == n + 1 and ("all", "task") in reads  # counted again
