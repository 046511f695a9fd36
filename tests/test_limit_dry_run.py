"""--limit, --dry-run and --concurrency on synth and eval, on every environment family."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.store import list_runs

runner = CliRunner()
ENVS = ["toy", "sql:pets_1", "miniwob", "site", "tau2.mock", "mcp", "repo", "desktop"]
PRICES = 'prices={"openai:gpt-4o-mini": {prompt: 0.15, completion: 0.6}}'


@pytest.mark.parametrize("env", ENVS)
def test_dry_run_prints_calls_tokens_and_cost_and_stores_nothing(tmp_path: Path, env: str) -> None:
    sets = ["--set", f"run_root={tmp_path}", "--set", PRICES]
    common = ["--env", env, "--model", "openai:gpt-4o-mini", "--limit", "2", "--dry-run", *sets]
    for command in (["synth"], ["eval", "--variants", "none,both"]):
        r = runner.invoke(app, [*command, *common, "--run", "d"])
        assert r.exit_code == 0, r.output
        m = re.search(
            r"at most (\d+) model calls, ([\d,]+) prompt \+ ([\d,]+) completion tokens, "
            r"\$(\d+\.\d{4}) at the configured prices",
            r.output,
        )
        assert m and int(m[1]) > 0 and float(m[4]) > 0, r.output
        assert "nothing was run or stored" in r.output
    assert "eval of 2 " in r.output and "x 2 variants" in r.output
    assert not list_runs(tmp_path) and not (tmp_path / "d").exists()


@pytest.mark.parametrize("env", ["toy", "sql:pets_1"])
def test_limit_runs_the_first_n_tasks(tmp_path: Path, env: str) -> None:
    sets = ["--set", f"run_root={tmp_path}", "--set", "embed.name=hash"]
    base = ["--env", env, "--model", "scripted", "--run", "l", "--limit", "2", *sets]
    r = runner.invoke(app, ["synth", *base, "--concurrency", "2"])
    assert r.exit_code == 0, r.output
    info = json.loads(runner.invoke(app, ["runs", "show", "l", *sets]).output)
    assert info["counts"]["trajectory"] == 2  # rolled out: the first 2 tasks only
    assert info["counts"]["doc"] == 1  # proposed from one doc chunk, all that 2 tasks need
    r = runner.invoke(app, ["eval", *base, "--variants", "none", "--concurrency", "1"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "l" / "report" / "report.json").read_text())
    tasks = {row["task_id"] for row in report["results"]}
    assert len(tasks) == 2, tasks
