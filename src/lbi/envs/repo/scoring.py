"""SWE-bench-style success: every FAIL_TO_PASS and PASS_TO_PASS test passes, test files restored.

Scoring runs inside the sandbox, on the episode's workspace: first each test file named by the
task is replaced by its pristine copy (bound read-only at /pristine), so editing a test does not
count, then the task's test files run under pytest with `-rA`, whose summary names every test
with its outcome.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

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


def restore_command(test_files: list[str]) -> str:
    """Shell that puts each named test file back from /pristine (removing whatever stands there)."""
    cmds = []
    for f in test_files:
        q = shlex.quote(f)
        parent = shlex.quote(f.rsplit("/", 1)[0]) if "/" in f else "."
        cmds.append(f"rm -rf -- {q} && mkdir -p -- {parent} && cp -- /pristine/{q} {q}")
    return " && ".join(cmds) or "true"


def success(statuses: dict[str, str], fail_to_pass: list[str], pass_to_pass: list[str]) -> bool:
    return all(statuses.get(t) == "PASSED" for t in [*fail_to_pass, *pass_to_pass])
