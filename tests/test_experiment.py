"""`lbi experiment paper` end to end with the scripted model on the toy environment."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lbi.cli import app
from lbi.experiments.page import TABLES


def _invoke(tmp_path: Path, *extra: str) -> str:
    args = ["experiment", "paper", "--model", "scripted", "--env", "toy", "--seeds", "2"]
    args += ["--set", f"run_root={tmp_path / 'runs'}", "--set", "embed.name=hash"]
    args += ["--gold-seeds", "1000", "--out", str(tmp_path / "evidence"), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    text = _invoke(tmp_path, "--dry-run")
    text = " ".join(text.split())
    assert "toy-5 (5 tasks) x 2 seeds" in text and "at most" in text and "Table 3: skipped" in text
    assert not (tmp_path / "evidence").exists() and not (tmp_path / "runs").exists()


def test_gold_seeds_must_stay_out_of_evaluation(tmp_path: Path) -> None:
    args = ["experiment", "paper", "--model", "scripted", "--env", "toy", "--seeds", "2"]
    args += ["--gold-seeds", "1", "--set", f"run_root={tmp_path}", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "also evaluation seeds" in result.output


def test_paper_writes_every_table_and_resumes(tmp_path: Path) -> None:
    _invoke(tmp_path)
    page = (tmp_path / "evidence" / "paper-toy-toy-5.md").read_text()
    assert "## Table 1 — data" in page and all(f"## {t}" in page for t in TABLES)
    assert "Gold policy success on its own tasks: 100.0%." in page
    assert "Skipped: model 'scripted' is served" in page
    assert (tmp_path / "evidence" / "paper-toy-toy-5.png").read_bytes().startswith(b"\x89PNG")
    results = json.loads((tmp_path / "evidence" / "paper-toy-toy-5.json").read_text())
    arms = {r["variant"] for r in results}
    assert {"none", "docs", "distill", "both", "observation", "model", "gold"} <= arms
    assert {"whole-only", "explore-both", "swap-judge", "swap-labels", "swap-rollouts"} <= arms
    assert all(r["success"] for r in results if r["variant"] == "gold")
    _invoke(tmp_path)  # a rerun resumes: the same episodes, nothing duplicated
    again = json.loads((tmp_path / "evidence" / "paper-toy-toy-5.json").read_text())
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in results)
