"""SWE-bench-style success: every FAIL_TO_PASS and PASS_TO_PASS test passes on the agent's fix.

What is scored is never the episode's workspace itself (the agent wrote all of it) but a fresh
copy of the task's starting state plus the agent's changes to *source* files (`overlay`): test
files, `conftest.py`, pytest's configuration files and Python's start-up hooks
(`sitecustomize.py`, `usercustomize.py`, `*.pth`) stay pristine, so a conftest that marks every
report passed, or an edited test, counts for nothing. The tests run in the sandbox with Python's
start-up isolated (`PYTHONSAFEPATH`, `PYTHONNOUSERSITE`) and outcomes are read from the report
file that lbi's plug-in (pytest_report.py) writes outside the repository, not from stdout.

What this cannot stop: the fixed source code itself runs inside the pytest process it is scored
by, so code written to cheat (patching pytest from an imported module) is not ruled out; the
review of kept examples (judges) and the recorded diff are the checks for that (docs/security.md).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S.*?)(?: - .*)?$", re.MULTILINE)


@dataclass
class TestOutcome:
    statuses: dict[str, str]
    exit_code: int
    output: str


def parse_rA(output: str) -> dict[str, str]:
    """`{node id: PASSED|FAILED|ERROR|...}` from pytest's `-rA` short summary."""
    out: dict[str, str] = {}
    for status, node in _LINE.findall(output):
        out.setdefault(node.strip(), status)
    return out


def test_command(test_cmd: str, files: list[str]) -> str:
    """The task's test files under the repo's pytest command, with every outcome listed."""
    extra = "-rA -p no:cacheprovider -o addopts="
    return f"{test_cmd} {extra} " + " ".join(shlex.quote(f) for f in files)


_TEST_DIRS = {"tests", "test", "testing"}
_PROTECTED_NAMES = {"conftest.py", "sitecustomize.py", "usercustomize.py", "pytest.ini"}
_PROTECTED_NAMES |= {".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"}
_SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
MAX_REPORT_BYTES = 64 << 20


def is_protected(rel: str, named: set[str]) -> bool:
    """Paths whose pristine copy is scored whatever the agent did: tests, pytest's configuration
    and Python's start-up hooks (the agent's fix lives in the other, source files)."""
    parts = rel.split("/")
    name = parts[-1]
    return (
        rel in named
        or any(p in _TEST_DIRS for p in parts[:-1])
        or name in _PROTECTED_NAMES
        or name.startswith("test_")
        or name.endswith(("_test.py", ".pth"))
    )


def _entries(root: Path) -> dict[str, os.stat_result]:
    """Every file and link under `root` (relative path -> lstat), links never followed."""
    out: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in [
            *filenames,
            *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))),
        ]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                out[os.path.relpath(p, root)] = st
    return out


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _clear_parents(root: Path, rel: str) -> Path:
    """`root/rel`, its folders made real folders (a link standing there is removed first, so
    nothing is written through it) and any entry at `rel` itself removed."""
    here = root
    for part in rel.split("/")[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            here.unlink()
        here.mkdir(exist_ok=True)
    target = root / rel
    if target.is_symlink() or target.is_file():
        target.unlink()
    return target


def overlay(agent: Path, fresh: Path, named: set[str]) -> list[str]:
    """Carry the agent's changes to non-protected files from workspace `agent` into `fresh` (a
    new copy of the task's starting state). Returns the paths carried over, sorted."""
    theirs, ours = _entries(agent), _entries(fresh)
    changed = []
    for rel in sorted(set(theirs) | set(ours)):
        if is_protected(rel, named):
            continue
        src, dst = agent / rel, fresh / rel
        if rel not in theirs:
            if os.path.lexists(dst):
                dst.unlink()
            changed.append(rel)
            continue
        st = theirs[rel]
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(src)
            if rel in ours and stat.S_ISLNK(ours[rel].st_mode) and os.readlink(dst) == link:
                continue
            os.symlink(link, _clear_parents(fresh, rel))
        else:
            data = _read(src)
            if rel in ours and stat.S_ISREG(ours[rel].st_mode) and _read(dst) == data:
                continue
            target = _clear_parents(fresh, rel)
            target.write_bytes(data)
            target.chmod(st.st_mode & 0o755)
        changed.append(rel)
    return changed


def read_report(path: Path) -> dict[str, str]:
    """`{node id: PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS}` from pytest_report.py's lines."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    with path.open("rb") as f:
        raw = f.read(MAX_REPORT_BYTES)
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
            node, when, outcome = str(row["nodeid"]), row["when"], row["outcome"]
        except (ValueError, KeyError, TypeError):
            continue
        if out.get(node) == "ERROR":
            continue
        if when in ("setup", "teardown") and outcome == "failed":
            out[node] = "ERROR"
        elif when == "call":
            xfail = bool(row.get("xfail"))
            kind = {"passed": "XPASS" if xfail else "PASSED", "failed": "FAILED"}
            out[node] = kind.get(outcome, "XFAIL" if xfail else "SKIPPED")
        elif when == "setup" and outcome == "skipped":
            out[node] = "SKIPPED"
    return out


def success(statuses: dict[str, str], fail_to_pass: list[str], pass_to_pass: list[str]) -> bool:
    return all(statuses.get(t) == "PASSED" for t in [*fail_to_pass, *pass_to_pass])
