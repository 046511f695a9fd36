"""Children that tests stop with Ctrl-C: `lbi view` (fetch its page, then stop it), and a SIGINT
handler a background-started runner would otherwise have turned off."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path


def default_sigint() -> None:
    """For a child the test will Ctrl-C: a runner started in the background (`cmd &` in a
    script) ignores SIGINT, and a child would inherit that and never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def view_then_ctrl_c(argv: list[str], cwd: Path | None, env: dict[str, str]) -> tuple[bytes, str]:
    """(the first page's body, everything the viewer printed); asserts it stopped with exit 0."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        line, match = "", None
        while match is None:  # the URL line (a warning on stderr may come first)
            got = proc.stdout.readline()
            assert got, f"the viewer ended before printing its URL:\n{line}"
            line += got
            match = re.search(r"http://127\.0\.0\.1:\d+/", got)
        with urllib.request.urlopen(match.group(0), timeout=60) as page:
            assert page.status == 200
            body = page.read()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, line + rest
    return body, line + rest
