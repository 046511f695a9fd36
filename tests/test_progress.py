"""Progress: one line per bar at 100 columns in a terminal; periodic lines with ETA in a log."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from lbi import progress
from lbi.progress import Meter, stage_progress, status_line

LBI = [sys.executable, "-m", "lbi"]
EVAL_ARGS = ["--run", "e", "--variants", "none", "--set"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Spent:
    """An accountant with a big bill, for the widest spend column."""

    def snapshot(self) -> dict:
        total = {"calls": 123456, "cache_hits": 65432, "prompt_tokens": 98_765_432}
        return {"total": {**total, "completion_tokens": 1_234_567, "cost_usd": 1234.5678}}


def test_eta_counts_only_this_sessions_units() -> None:
    now = [100.0]
    meter = Meter(total=40, done=10, clock=lambda: now[0])
    assert meter.eta() == "?"  # resumed with 10 done: no speed known yet
    now[0] += 120.0
    meter.advance(2)  # 2 episodes in 2 minutes: 28 left at 1/min
    assert meter.eta() == "0:28:00" and meter.rate_text() == "1.0/min"
    line = status_line("eval spider-dev-23", meter, None)
    assert line == "eval spider-dev-23: 12/40 (30%) · 0:02:00 · 1.0/min · eta 0:28:00"


def test_the_live_bar_fits_one_line_at_100_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.StringIO()
    monkeypatch.setattr(
        progress, "console", Console(file=sink, width=100, force_terminal=True, color_system=None)
    )
    with stage_progress(
        "judging (3 judges) of a very long stage name", 12345, _Spent(), done=100
    ) as advance:  # type: ignore[arg-type]
        advance(5)
    lines = [ANSI.sub("", x) for x in re.split(r"[\r\n]", sink.getvalue())]
    bars = [x for x in lines if "eta" in x]
    assert bars, sink.getvalue()
    for bar in bars:
        assert len(bar.rstrip()) <= 100 and "/12345" in bar and "$1234.57" in bar, bar
    assert "105/12345" in bars[-1]
    assert not [x for x in lines if x.strip() and "eta" not in x]  # nothing wrapped


def test_a_log_gets_periodic_lines_while_a_unit_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=sink, width=100))
    monkeypatch.setenv("LBI_PROGRESS_EVERY", "0.1")
    with stage_progress("rollouts", 3) as advance:
        time.sleep(0.55)  # one slow unit: the log still moves
        advance()
    lines = sink.getvalue().strip().splitlines()
    assert len(lines) >= 5, lines
    assert lines[0].startswith("rollouts: 0/3 (0%)") and "eta ?" in lines[0]
    assert lines[-1].startswith("rollouts: 1/3 (33%)") and "eta 0:00:01" in lines[-1]


def test_eval_to_a_log_file_says_how_far_and_how_long(tmp_path: Path) -> None:
    log = tmp_path / "eval.log"
    env = {**os.environ, "PYTHONPATH": str(Path(progress.__file__).parents[1])}
    with log.open("w") as f:
        r = subprocess.run(
            [
                *LBI,
                "eval",
                "--env",
                "toy",
                "--model",
                "scripted",
                *EVAL_ARGS,
                f"run_root={tmp_path}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=f,
            env=env,
            timeout=120,
        )
    text = log.read_text()
    assert r.returncode == 0, text
    assert re.search(r"^eval toy-5: 0/15 \(0%\) .* eta \?", text, re.M), text
    assert re.search(r"^eval toy-5: 15/15 \(100%\) .*/s · eta 0:00:00 · \d+ calls", text, re.M)
