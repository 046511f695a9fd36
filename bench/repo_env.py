"""Benchmark: the repo environment's sandbox overhead, episode reset time, and workspace copies.

1. Per-command overhead: the same commands (`true`, `echo hi`, `ls`) run through the bubblewrap
   sandbox (`Sandbox.run`) and as a bare `bash -c` subprocess (`run_argv`, same output capture),
   interleaved in the same run; p50 and p99 of each, and of the difference of paired runs.
2. Episode reset per project: `RepoEnv.reset` on a bug task (copy of the pristine snapshot,
   ownership, the bug's patch, the sandbox set up), snapshots already taken, p50 and p99.
3. Copy strategies for the per-episode workspace, on each project's snapshot: `shutil.copytree`,
   `cp -a`, hard links (`cp -al`), reflinks (`cp -a --reflink=always`) and `git worktree add`,
   each timed and then checked for honesty: after `echo >> FILE` in the copy (an in-place write,
   as an agent's shell does), is the snapshot unchanged?

    .venv/bin/python bench/repo_env.py [--commands 60] [--resets 15]

Replaces the "## Repo environment" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo import suite
from lbi.envs.repo.sandbox import Limits, Sandbox, run_argv
from lbi.envs.repo.workspace import digest, remove_tree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

COMMANDS = ["true", "echo hi", "ls"]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] * 1000


def overhead(n: int, root: Path) -> list[str]:
    ws = root / "ws"
    ws.mkdir()
    ws.chmod(0o777)
    sb, lim = Sandbox(ws), Limits(timeout_s=30)
    sandboxed: list[float] = []
    bare: list[float] = []
    for i in range(n):
        cmd = COMMANDS[i % len(COMMANDS)]
        for first in ("sandbox", "bare") if i % 2 else ("bare", "sandbox"):  # alternate order
            t = time.perf_counter()
            if first == "sandbox":
                res = sb.run(cmd, lim)
            else:
                res = run_argv(["bash", "-c", cmd], lim, cwd=str(ws))
            (sandboxed if first == "sandbox" else bare).append(time.perf_counter() - t)
            assert res.exit_code == 0, res.render()
    diff = [s - b for s, b in zip(sandboxed, bare, strict=True)]
    return [
        "| command runner | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| bare `bash -c` subprocess | {pct(bare, 0.5):.1f} | {pct(bare, 0.99):.1f} |",
        f"| bubblewrap sandbox | {pct(sandboxed, 0.5):.1f} | {pct(sandboxed, 0.99):.1f} |",
        f"| **overhead** (paired difference) | **{pct(diff, 0.5):.1f}** | {pct(diff, 0.99):.1f} |",
    ]


def resets(n: int, root: Path) -> list[str]:
    rows = ["| project | files | reset p50 ms | reset p99 ms |", "|---|---|---|---|"]
    tasks = {suite.to_task(r).setup["project"]: suite.to_task(r) for r in _instances()}
    env = make_env("repo", Config(run_root=str(root / "runs")))
    try:
        for project, task in sorted(tasks.items()):
            env.reset(task)  # takes the snapshot once
            files = sum(1 for p in env.sources.snapshot(project).rglob("*") if p.is_file())
            times = []
            for _ in range(n):
                t = time.perf_counter()
                env.reset(task)
                times.append(time.perf_counter() - t)
            rows.append(f"| {project} | {files} | {pct(times, 0.5):.0f} | {pct(times, 0.99):.0f} |")
    finally:
        env.close()
    return rows


def _instances() -> list[dict]:
    return suite.read_instances(suite.DEMO_BUGS) + suite.read_instances(suite.SHIPPED)


def _copy(kind: str, snap: Path, dest: Path) -> None:
    if kind == "shutil.copytree":
        shutil.copytree(snap, dest, symlinks=True)
    elif kind == "git worktree":
        git = ["git", "-c", "safe.directory=*", "-C", str(snap), "worktree", "add", "-q"]
        subprocess.run([*git, "--detach", str(dest)], check=True, capture_output=True)
    else:
        flags = {"cp -a": ["-a"], "cp -al (hard links)": ["-al"], "cp --reflink": ["-a"]}[kind]
        if kind == "cp --reflink":
            flags = ["-a", "--reflink=always"]
        subprocess.run(["cp", *flags, str(snap), str(dest)], check=True, capture_output=True)


def copies(n: int, root: Path) -> list[str]:
    kinds = ["shutil.copytree", "cp -a", "cp -al (hard links)", "cp --reflink", "git worktree"]
    rows = ["| project | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    env = make_env("repo", Config(run_root=str(root / "runs")))
    honest: dict[str, str] = {}
    try:
        for project in ["wordstats", "inflection", "parse", "cachetools"]:
            src = env.sources.snapshot(project)
            snap = root / f"snap-{project}"  # a private copy: worktrees and hard links touch it
            shutil.copytree(src, snap, symlinks=True)
            target = next(p for p in sorted(snap.rglob("*.py")) if ".git" not in p.parts)
            cells = []
            for kind in kinds:
                times, ok = [], True
                for i in range(n):
                    dest = root / f"c-{project}-{i}"
                    t = time.perf_counter()
                    try:
                        _copy(kind, snap, dest)
                    except subprocess.CalledProcessError as e:
                        shutil.rmtree(dest, ignore_errors=True)
                        ok = False
                        honest[kind] = "unsupported here: " + e.stderr.decode().strip()[:80]
                        break
                    times.append(time.perf_counter() - t)
                    if i == 0:
                        before = digest(snap)
                        with open(dest / target.relative_to(snap), "a") as f:
                            f.write("# in-place write\n")
                        same = digest(snap) == before
                        honest.setdefault(kind, "yes" if same else "NO: the snapshot changed")
                        if not same:
                            shutil.rmtree(snap)
                            shutil.copytree(src, snap, symlinks=True)
                    remove_tree(dest)
                if kind == "git worktree":
                    subprocess.run(["git", "-C", str(snap), "worktree", "prune"], check=True)
                cells.append(f"{pct(times, 0.5):.1f} ms" if ok and times else "—")
            rows.append(f"| {project} | " + " | ".join(cells) + " |")
    finally:
        env.close()
    rows += ["", "| strategy | honest (snapshot unchanged after an in-place write) |", "|---|---|"]
    rows += [f"| {k} | {honest.get(k, '?')} |" for k in kinds]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", type=int, default=60)
    ap.add_argument("--resets", type=int, default=15)
    ap.add_argument("--copies", type=int, default=10)
    a = ap.parse_args()
    note = machine()
    root = Path(tempfile.mkdtemp(prefix="lbi-bench-repo-"))
    root.chmod(0o755)
    try:
        body = [f"`bench/repo_env.py`: {note}.", ""]
        body += [f"Per-command overhead, {a.commands} paired runs of {', '.join(COMMANDS)}:", ""]
        body += overhead(a.commands, root)
        body += ["", f"Episode reset (`RepoEnv.reset` on a bug task), {a.resets} resets:", ""]
        body += resets(a.resets, root)
        body += ["", f"Workspace copy strategies, p50 of {a.copies} copies of each snapshot:", ""]
        body += copies(a.copies, root)
    finally:
        remove_tree(root)
    write_section("Repo environment", "\n".join(body))
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
