"""lbi environments out to verifiers (issue 32, item 3): verifiers' own evaluation entry point
(`run_eval`, what `vf-eval` runs; verifiers 0.4.0) scores an lbi environment through the
`lbi-verifiers` taskset, with a scripted model behind an OpenAI-compatible server on 127.0.0.1:
its gold actions score 1.0 on every task, handing in at once 0.0. verifiers pins packages that
would move lbi's, so this runs in a virtualenv of its own (`.venv-verifiers`, made by
`make test`, with lbi's core) through tests/verifiers_eval.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(os.environ.get("LBI_VERIFIERS_PYTHON") or ROOT / ".venv-verifiers" / "bin" / "python")


def _evaluate(mode: str, out: Path) -> dict[str, float]:
    require(PYTHON.exists(), "the verifiers virtualenv (.venv-verifiers, `make install-test`)")
    r = subprocess.run(
        [str(PYTHON), str(ROOT / "tests" / "verifiers_eval.py"), "toy", "toy-5", mode, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("mode", "want"), [("gold", 1.0), ("empty", 0.0)])
def test_verifiers_scores_an_lbi_environment(mode: str, want: float, tmp_path: Path) -> None:
    scores = _evaluate(mode, tmp_path / "out")
    assert len(scores) == 5 and set(scores.values()) == {want}, scores
    traces = list((tmp_path / "out").rglob("*.jsonl"))
    assert traces, "verifiers wrote no traces"
