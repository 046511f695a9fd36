"""Shared by bench/ and experiments/: machine facts, replacing one section of a results file,
and the fake OpenAI server in its own process (so its CPU does not count as the client's)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {load:.1f} at the start; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace `## heading` (up to the next `## `) in the results file, or append it."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if line.strip() == f"## {heading}"), None)
    block = [f"## {heading}", "", *body.strip().splitlines(), ""]
    if start is None:
        lines += ["", *block]
    else:
        end = next(
            (n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines)
        )
        lines[start:end] = block
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")  # a killed run never leaves half a file
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, path)


def start_fake_openai(*options: str) -> tuple[subprocess.Popen[str], str]:
    """Start `lbi.testing.fake_openai` with `options`; (process, base URL) once it accepts."""
    cmd = [sys.executable, "-m", "lbi.testing.fake_openai", *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise RuntimeError(f"fake OpenAI server did not start: {line}")
    return proc, f"http://127.0.0.1:{line[1]}/v1"
