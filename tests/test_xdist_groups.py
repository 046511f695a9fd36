"""`make test` runs `-n 2 --dist loadgroup` so that a module's tests share one worker and its
module fixtures (a trained adapter, a converted database, a llama.cpp server) are built once.
pytest 9.2 with xdist 3.8 dropped the groups without a word (pytest-xdist#1386), and before that
the conftest marked the tests after xdist had read the marks: each module fixture was built on
both workers. This runs the real conftest under xdist and checks where the tests ran."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_modules_tests_run_on_one_worker_under_loadgroup() -> None:
    modules = ["tests/test_select_tasks.py", "tests/test_bench_scale.py"]
    argv = ["-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-v", *modules]
    r = subprocess.run(
        [sys.executable, "-m", "pytest", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ran = re.findall(r"^\[(gw\d)\] .*PASSED (\S+)", r.stdout, re.MULTILINE)
    mine = [(gw, node) for gw, node in ran if node.startswith(modules[0])]
    assert len(mine) == 3, r.stdout[-2000:]  # the module's three parametrized cases
    assert len({gw for gw, _ in mine}) == 1, mine  # one worker for the whole module
    assert all(node.endswith("@" + modules[0]) for _, node in mine), mine  # its group, by name
