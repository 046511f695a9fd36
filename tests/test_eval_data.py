"""An evaluation result belongs to the data its variant retrieved from: after the run's dataset
grows, `lbi eval` reruns the retrieval variants (and drops their old results), not `none`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lbi.cli import app
from lbi.store import RunStore
from lbi.types import EvalResult, Example

runner = CliRunner()


def _base(tmp_path: Path, chunks: int) -> list[str]:
    return [
        "--env", "toy", "--model", "scripted", "--run", "d",
        "--set", f"run_root={tmp_path}", "--set", "embed.name=hash",
        "--set", f"synth.max_chunks={chunks}",
    ]  # fmt: skip


def _results(tmp_path: Path) -> dict[str, dict[str, EvalResult]]:
    with RunStore(tmp_path / "d", create=False) as store:
        out: dict[str, dict[str, EvalResult]] = {}
        for r in store.all(EvalResult):
            out.setdefault(r.variant, {})[r.id] = r
        return out


def _kept(tmp_path: Path) -> int:
    with RunStore(tmp_path / "d", create=False) as store:
        return store.count(Example)


def test_results_of_retrieval_variants_are_rerun_when_the_data_changes(tmp_path: Path) -> None:
    for args in (["synth"], ["eval", "--variants", "none,both"]):
        r = runner.invoke(app, [*args, *_base(tmp_path, 1)])
        assert r.exit_code == 0, r.output
    first = _results(tmp_path)
    assert first["none"] and first["both"]
    assert all(r.data == "" for r in first["none"].values())
    assert len({r.data for r in first["both"].values()}) == 1 and "" not in {
        r.data for r in first["both"].values()
    }
    before = _kept(tmp_path)

    # The same data: nothing is rerun, every id is the same.
    r = runner.invoke(app, ["eval", "--variants", "none,both", *_base(tmp_path, 1)])
    assert r.exit_code == 0, r.output
    assert _results(tmp_path) == first

    # The dataset grows: `both` is rerun on it, and only its new results remain; `none` stays.
    r = runner.invoke(app, ["synth", *_base(tmp_path, 2)])
    assert r.exit_code == 0, r.output
    assert _kept(tmp_path) > before
    r = runner.invoke(app, ["eval", "--variants", "none,both", *_base(tmp_path, 2)])
    assert r.exit_code == 0, r.output
    assert "made on data the run no longer holds" in r.output
    second = _results(tmp_path)
    assert second["none"] == first["none"]
    assert len(second["both"]) == len(first["both"])
    assert not set(second["both"]) & set(first["both"])
    assert {r.task_id for r in second["both"].values()} == {
        r.task_id for r in first["both"].values()
    }
