"""Start documents: each task opens a fresh copy of one of these, written by code (no binaries
in the repository). A synthesized task names its start document in `setup["start"]`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lbi.envs.desktop import odf

SCORES: list[list[str | float]] = [
    ["Name", "Score"],
    ["Dana", 7],
    ["Bob", 5],
    ["Eve", 9],
    ["Ann", 3],
]
VALUES = [float(r[1]) for r in SCORES[1:]]
NAMES = [str(r[0]) for r in SCORES[1:]]
MEMO = [
    "Quarterly memo",
    "The team chose a new colour scheme for the website.",
    "Each colour was tested with users in March.",
    "P.S. The office is closed on Friday.",
]
NOTES = "shopping list\neggs\nbread\ntodo: call the bank\n"


@dataclass(frozen=True)
class Start:
    app: str  # calc | writer | mousepad
    file: str  # the file name the app opens (and the agent saves)
    make: Callable[[Path], None]


def _notes(path: Path) -> None:
    path.write_text(NOTES)


STARTS: dict[str, Start] = {
    "calc-scores": Start("calc", "scores.ods", lambda p: odf.write_sheet(p, SCORES)),
    "calc-blank": Start("calc", "sheet.ods", lambda p: odf.write_sheet(p, [[""]])),
    "writer-memo": Start("writer", "memo.odt", lambda p: odf.write_text(p, MEMO)),
    "writer-blank": Start("writer", "document.odt", lambda p: odf.write_text(p, [""])),
    "mousepad-notes": Start("mousepad", "notes.txt", _notes),
}


def materialize(start: str, workdir: Path) -> Path:
    """Write the start document into `workdir`; return its path."""
    s = STARTS[start]
    path = workdir / s.file
    s.make(path)
    return path
