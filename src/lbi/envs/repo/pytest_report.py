"""A pytest plug-in that lbi loads (`-p lbi_pytest_report`) when it scores a submission.

It writes one JSON line per test phase to the file named by `LBI_PYTEST_REPORT`, a folder
outside the repository that only the scoring run can write: the score is read from there, not
from stdout, where code under test (a `sitecustomize.py`, a print at import) could write
`PASSED <id>` lines of its own. Standard library only: it runs in the repository's Python.
"""

from __future__ import annotations

import json
import os
from typing import Any

_OUT: Any = None


def pytest_configure(config: Any) -> None:
    global _OUT
    path = os.environ.get("LBI_PYTEST_REPORT")
    if path and _OUT is None:
        _OUT = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole session


def pytest_runtest_logreport(report: Any) -> None:
    if _OUT is None:
        return
    row = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "xfail": bool(getattr(report, "wasxfail", None) is not None),
    }
    _OUT.write(json.dumps(row) + "\n")
    _OUT.flush()


def pytest_unconfigure(config: Any) -> None:
    global _OUT
    if _OUT is not None:
        _OUT.close()
        _OUT = None
