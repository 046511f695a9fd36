"""`lbi export` streams: its memory does not grow with the run, and what it writes is every kept
example, in id order, with exactly its own verdicts (issue 30)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.run import open_run
from lbi.types import Example, Step, Verdict

runner = CliRunner()
# Examples. Both are past the ~2,000 examples it takes to fill pydantic-core's JSON string
# cache (16,384 short strings, bounded), so what is left to grow is what the export holds.
SMALL, LARGE = 2400, 7200


def _run(root: Path, n: int) -> tuple[str, list[str]]:
    """A run with `n` examples (every third rejected by its judge) and their verdicts."""
    name = f"r{n}"
    cfg = Config(env="toy", model="scripted", run_root=str(root))
    ctx = open_run(cfg, name)
    judges = [d.name for d in ctx.judges()]
    examples, verdicts = [], []
    for k in range(n):
        steps = [
            Step(index=s, observation=f"obs {k}.{s} " * 20, reason="r", action=f"get k{s}",
                 next_observation=f"value {k}.{s}")
            for s in range(3)
        ]  # fmt: skip
        ex = Example(
            env="toy", instruction=f"Read key number {k}", style="task", trajectory_id=f"t{k}",
            task_id=f"task{k}", i=0, j=2, policy=cfg.synth.backward_policy, steps=steps,
        )  # fmt: skip
        examples.append(ex)
        verdicts += [
            Verdict(example_id=ex.id, judge=j, criteria={"achieves": k % 3 != 0}, accept=k % 3 != 0)
            for j in judges
        ]
    ctx.store.put([*examples, *verdicts])
    ctx.store.close()
    kept = sorted(e.id for k, e in enumerate(examples) if k % 3 != 0)
    return name, kept


def _export(root: Path, name: str, fmt: str, out: Path) -> int:
    """Peak Python memory (bytes) of one `lbi export`."""
    tracemalloc.start()
    try:
        r = runner.invoke(
            app, ["export", name, "--format", fmt, "--out", str(out), "--set", f"run_root={root}"]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.exit_code == 0, r.output
    return peak


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, tuple[str, list[str]]]]:
    root = tmp_path_factory.mktemp("runs")
    return root, {n: _run(root, n) for n in (SMALL, LARGE)}


@pytest.mark.parametrize("fmt", ["jsonl", "openai", "adp", "hf"])
def test_export_memory_does_not_grow_with_the_run(
    runs: tuple[Path, dict[int, tuple[str, list[str]]]], fmt: str
) -> None:
    root, made = runs
    peaks = {}
    for n, (name, kept) in made.items():
        out = root / f"{name}.{fmt}"
        peaks[n] = _export(root, name, fmt, out)
        if fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert [r["id"] for r in rows] == kept  # every kept example, in id order
            assert all(len(r["verdicts"]) == 1 and r["verdicts"][0]["accept"] for r in rows)
        if fmt == "hf":
            import datasets

            ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "train.parquet"))
            assert ds["train"]["id"] == kept
    # A list-based export holds every row (about 3 kB each here): its peak would grow by 10+ MB
    # from the small run to the large one. Streaming, the peak is a page of records.
    assert peaks[LARGE] < 1.15 * peaks[SMALL], peaks
