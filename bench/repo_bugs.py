"""The full repo-bugs check: every instance scored literally three ways, in the real environment.

For each instance of the shipped suite: the gold patch applied with `git apply` in the sandbox
then `submit` must score 1.0; `submit` on the untouched (buggy) workspace must score 0.0; and an
edit that only rewrites the first failing test file (so its tests pass trivially) then `submit`
must score 0.0 (scoring restores the test files). Episodes run in `--workers` environments side
by side. The default test run checks the same facts for every instance more cheaply
(tests/test_repo_env.py); this script is the literal version.

    .venv/bin/python bench/repo_bugs.py [--workers 2]

Replaces the "## Measured: every repo-bugs instance" section of docs/environments/repo.md;
exits 1 if any instance scores otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo import suite
from lbi.types import Task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

DOC = Path(__file__).resolve().parents[1] / "docs" / "environments" / "repo.md"
EXPECTED = {"gold": 1.0, "empty": 0.0, "test_only_edit": 0.0}


def variants(task: Task) -> dict[str, list[str]]:
    test_file = task.gold["fail_to_pass"][0].split("::")[0]
    edit = {"create": test_file, "content": "def test_nothing():\n    assert True\n"}
    return {
        "gold": ["git apply - <<'EOF'\n" + task.gold["patch"] + "EOF"],
        "empty": [],
        "test_only_edit": [json.dumps(edit)],
    }


def score(env, task: Task, actions: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    env.reset(task, seed=0)
    for a in actions:
        info = env.step(a)[4]
        if info.get("error") or info.get("exit_code", 0) != 0:
            return float("nan"), time.perf_counter() - start
    return env.step("submit")[1], time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    tasks = [suite.to_task(r) for r in suite.read_instances(suite.SHIPPED)]
    note = machine()
    root = Path(tempfile.mkdtemp(prefix="lbi-bench-repo-bugs-"))

    def group(n: int) -> list[tuple[str, str, str, float, float]]:
        env = make_env("repo", Config(run_root=str(root / f"w{n}")))
        out = []
        try:
            for t in tasks[n :: a.workers]:
                for kind, actions in variants(t).items():
                    reward, secs = score(env, t, actions)
                    out.append((t.setup["project"], t.name, kind, reward, secs))
                    print(f"{t.name} {kind}: {reward} ({secs:.1f} s)", file=sys.stderr)
        finally:
            env.close()
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(a.workers) as pool:
        rows = [r for rs in pool.map(group, range(a.workers)) for r in rs]
    wall = time.perf_counter() - start
    wrong = sorted((name, kind, r) for _, name, kind, r, _ in rows if r != EXPECTED[kind])
    per_project = Counter(p for p, _, kind, _, _ in rows if kind == "gold")
    lines = [
        f"`bench/repo_bugs.py --workers {a.workers}`: {len(tasks)} instances "
        f"({', '.join(f'{p} {n}' for p, n in sorted(per_project.items()))}), "
        f"{len(rows)} episodes scored, {wall:.0f} s wall. {note}.",
        "",
        "| patch | expected | as expected | otherwise | mean s per episode |",
        "|---|---|---|---|---|",
    ]
    for kind, want in EXPECTED.items():
        mine = [(r, s) for _, _, k, r, s in rows if k == kind]
        ok = sum(r == want for r, _ in mine)
        mean = sum(s for _, s in mine) / len(mine)
        lines.append(f"| {kind} | {want} | {ok} | {len(mine) - ok} | {mean:.1f} |")
    if wrong:
        lines += ["", "Otherwise: " + ", ".join(f"{n} {k}={r}" for n, k, r in wrong)]
    write_section("Measured: every repo-bugs instance", "\n".join(lines), DOC)
    print("\n".join(lines))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
