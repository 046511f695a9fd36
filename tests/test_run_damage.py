"""A damaged run store: every command that opens it says so in one line and exits 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app

runner = CliRunner()
READERS = [
    ["stats", "t"],
    ["runs", "show", "t"],
    ["export", "t", "--out", "x.jsonl"],
    ["report", "t"],
    ["index", "build", "t"],
]
WRITERS = [["synth"], ["eval", "--variants", "none"]]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    sets = ["--set", f"run_root={root}", "--set", "embed.name=hash"]
    r = runner.invoke(app, ["synth", "--env", "toy", "--model", "scripted", "--run", "t", *sets])
    assert r.exit_code == 0, r.output
    return root / "t"


def _damage(how: str, db: Path) -> str:
    if how == "cut":
        db.write_bytes(db.read_bytes()[:100])
        return "is damaged"
    if how == "empty":
        db.write_bytes(b"")
        return "is empty (0 bytes)"
    db.unlink()
    return "is missing"


@pytest.mark.parametrize("how", ["cut", "empty", "missing"])
def test_a_damaged_store_is_one_line_and_exit_2(good_run: Path, tmp_path: Path, how: str) -> None:
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "t")
    db = root / "t" / "run.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    said = _damage(how, db)
    sets = ["--set", f"run_root={root}", "--set", "embed.name=hash"]
    for args in READERS + [
        [*w, "--env", "toy", "--model", "scripted", "--run", "t"] for w in WRITERS
    ]:
        r = runner.invoke(app, [*args, *sets])
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and str(db) in lines[0] and said in lines[0], (args, r.output)
        assert "--run NEW" in lines[0]
    r = runner.invoke(app, ["runs", "list", *sets])
    assert r.exit_code == 0 and "t  DAMAGED" in r.output and said in r.output
    if how != "missing":  # the damaged file is left as it was for the user to look at
        assert db.stat().st_size == (100 if how == "cut" else 0)


def test_runs_list_marks_only_damaged_runs(good_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "t")
    shutil.copytree(good_run, root / "u")
    (root / "u" / "run.sqlite").write_bytes(b"")
    r = runner.invoke(app, ["runs", "list", "--set", f"run_root={root}"])
    lines = r.output.strip().splitlines()
    assert lines[0] == "t" and lines[1].startswith("u  DAMAGED")
