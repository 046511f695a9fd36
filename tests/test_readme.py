"""Every `lbi ...` command in README.md's bash blocks runs as written, in order, in a fresh folder.

The commands run with the temporary folder as working directory, so the default run root
(`runs/`) and any `--out` path land there. `lbi view` serves until stopped: the test fetches the
page it prints and then stops it with Ctrl-C. The wall time of each command is printed
(`pytest -s`); the README's figures come from such a run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from childproc import view_then_ctrl_c

pytest.importorskip("xllamacpp")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Lines of a bash block that are not `lbi` commands, and what covers them instead.
NOT_LBI = {
    "make demo": "installs, then scripts/demo.sh; not run here (about 4 min, timed in the README)",
    "make test": "is this test suite",
}
BUDGET_S = 600  # the whole README, on the embedded model


def readme_commands(text: str) -> list[str]:
    """The command lines of every ```bash block, comments stripped, in order."""
    lines: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def test_every_readme_command_is_an_lbi_command_or_named_here() -> None:
    commands = readme_commands(README.read_text())
    others = [c for c in commands if not c.startswith("lbi ")]
    assert others == [c for c in others if c in NOT_LBI], others
    assert sum(c.startswith("lbi ") for c in commands) >= 9


@pytest.mark.slow
@pytest.mark.local_model
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("LBI_RUN_ROOT", None)
    times: list[tuple[float, str]] = []
    for command in readme_commands(README.read_text()):
        if not command.startswith("lbi "):
            continue
        argv = [sys.executable, "-m", "lbi", *shlex.split(command)[1:]]
        started = time.monotonic()
        if argv[3] == "view":
            body, _ = view_then_ctrl_c(argv, tmp_path, env)
            assert b"r1" in body
        else:
            done = subprocess.run(
                argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BUDGET_S
            )
            assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        times.append((time.monotonic() - started, command))
    for seconds, command in times:
        print(f"{seconds:7.1f} s  {command}")
    total = sum(s for s, _ in times)
    print(f"{total:7.1f} s  the whole README")
    assert total < BUDGET_S
