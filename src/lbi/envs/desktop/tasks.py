"""The `desktop-basic` suite: OSWorld-style tasks checked on the file the agent saved.

Each task names its start document, an instruction, a checker that reads the episode's folder
after done() (never the screen), and a gold action script. The checkers accept only the asked
change: the untouched start document fails every one of them (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lbi.envs.base import EnvError
from lbi.envs.desktop import odf
from lbi.envs.desktop.starts import MEMO, NAMES, NOTES, VALUES
from lbi.types import Task

SUITE = "desktop-basic"
Check = Callable[[Path], bool]


@dataclass(frozen=True)
class Spec:
    name: str
    start: str
    instruction: str
    check: Check
    gold: list[str]


def _sheet(d: Path) -> odf.Sheet:
    sheets = odf.read_sheets(d / "scores.ods")
    return sheets[0] if sheets else odf.Sheet("")


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _names(d: Path) -> list[str]:
    return [n for n in _sheet(d).column("A")[1:] if n]


def _memo(d: Path) -> odf.TextDoc:
    return odf.read_text(d / "memo.odt")


def _notes(d: Path) -> list[str]:
    try:
        return (d / "notes.txt").read_text().splitlines()
    except OSError:
        return []


def _formula(cell: odf.Cell, fn: str, rng: str) -> bool:
    # ODF writes references as [.B2:.B5] after an "of:" namespace prefix.
    f = "".join(ch for ch in cell.formula.upper() if ch not in "$.[]")
    return fn in f and rng in f


_GO = 'key("ctrl+Home")'
# The Save As dialog: wait for it by a named element, step back to the File type list, open it
# and walk down to Text CSV (the 13th type Calc offers), then confirm the CSV field options.
_SAVE_AS_CSV = [
    'key("ctrl+shift+s")',
    "focus('Automatic file name extension')",
    'key("shift+Tab shift+Tab")',
    'key("alt+Down")',
    'key("' + "Down " * 12 + 'Return")',
    "click('Save')",
    "click('OK')",
]


def _csv_rows(d: Path) -> list[list[str]]:
    """scores.csv where the Save As dialog opens (the home folder) or beside the document."""
    import csv

    for path in (d / "home" / "scores.csv", d / "scores.csv"):
        try:
            with path.open(newline="") as f:
                return [row for row in csv.reader(f) if row]
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
    return []


def _as_table(rows: list[list[str]]) -> list[tuple[str, float | None]]:
    return [(r[0], _num(r[1]) if len(r) > 1 else None) for r in rows]


_TOTAL = sum(VALUES)

SPECS = [
    Spec(
        "calc-set-cell",
        "calc-scores",
        "In scores.ods, put the number 42 in cell D2, then save the file.",
        lambda d: _num(_sheet(d).cell("D2").text) == 42,
        [_GO, 'key("Down Right Right Right")', 'type("42\\n")', "save()", "done()"],
    ),
    Spec(
        "calc-sum",
        "calc-scores",
        "In scores.ods, enter a formula in B6 that adds up the scores in B2:B5, then save.",
        lambda d: (
            _formula(_sheet(d).cell("B6"), "SUM(", "B2:B5")
            and _num(_sheet(d).cell("B6").text) == _TOTAL
        ),
        [
            _GO,
            'key("Down Down Down Down Down Right")',
            'type("=SUM(B2:B5)\\n")',
            "save()",
            "done()",
        ],
    ),
    Spec(
        "calc-average",
        "calc-scores",
        "In scores.ods, put the average of the scores B2:B5 in cell B7 with a formula; save.",
        lambda d: (
            _formula(_sheet(d).cell("B7"), "AVERAGE(", "B2:B5")
            and _num(_sheet(d).cell("B7").text) == _TOTAL / 4
        ),
        [
            _GO,
            'key("Down Down Down Down Down Down Right")',
            'type("=AVERAGE(B2:B5)\\n")',
            "save()",
            "done()",
        ],
    ),
    Spec(
        "calc-bold-header",
        "calc-scores",
        "In scores.ods, make the header cells A1 and B1 bold, then save.",
        lambda d: _sheet(d).cell("A1").bold and _sheet(d).cell("B1").bold,
        [_GO, 'key("shift+Right")', 'key("ctrl+b")', "save()", "done()"],
    ),
    Spec(
        "calc-sort",
        "calc-scores",
        "In scores.ods, sort the rows below the header by Name from A to Z, then save.",
        lambda d: _names(d) == sorted(NAMES) and _num(_sheet(d).cell("B2").text) == 3,
        [_GO, "click('Sort Ascending')", "save()", "done()"],
    ),
    Spec(
        "calc-double",
        "calc-scores",
        "In scores.ods, fill C2:C5 with formulas that double the score in the same row; save.",
        lambda d: all(
            _formula(_sheet(d).cell(f"C{r}"), "B", f"B{r}")
            and _num(_sheet(d).cell(f"C{r}").text) == 2 * VALUES[r - 2]
            for r in range(2, 6)
        ),
        [
            _GO,
            'key("Down Right Right")',
            'type("=B2*2\\n=B3*2\\n=B4*2\\n=B5*2\\n")',
            "save()",
            "done()",
        ],
    ),
    Spec(
        "calc-replace",
        "calc-scores",
        "In scores.ods, change the name Bob to Rob, then save.",
        lambda d: "Rob" in _names(d) and "Bob" not in _names(d) and len(_names(d)) == 4,
        [_GO, 'key("Down Down")', 'type("Rob\\n")', "save()", "done()"],
    ),
    Spec(
        "calc-save-csv",
        "calc-scores",
        "Save scores.ods as a CSV file (Text CSV, comma-separated) named scores.csv in the home "
        "folder, where the Save As dialog opens.",
        lambda d: _as_table(_csv_rows(d)) == [("Name", None), *zip(NAMES, VALUES, strict=True)],
        [*_SAVE_AS_CSV, "done()"],
    ),
    Spec(
        "writer-bold-title",
        "writer-memo",
        "In memo.odt, make the title line 'Quarterly memo' bold, then save.",
        lambda d: "Quarterly memo" in _memo(d).bold_spans,
        ['key("ctrl+Home shift+End")', 'key("ctrl+b")', "save()", "done()"],
    ),
    Spec(
        "writer-heading",
        "writer-memo",
        "In memo.odt, give the title 'Quarterly memo' the paragraph style Heading 1; save.",
        lambda d: _memo(d).headings == ["Quarterly memo"],
        ['key("ctrl+Home")', 'key("ctrl+1")', "save()", "done()"],
    ),
    Spec(
        "writer-append",
        "writer-memo",
        "In memo.odt, add a last paragraph that says 'Best regards, Ann', then save.",
        lambda d: [p for p in _memo(d).paragraphs if p][-1:] == ["Best regards, Ann"],
        ['key("ctrl+End")', 'type("\\nBest regards, Ann")', "save()", "done()"],
    ),
    Spec(
        "writer-delete-ps",
        "writer-memo",
        "In memo.odt, delete the paragraph that starts with 'P.S.', then save.",
        lambda d: (
            bool(_memo(d).paragraphs)
            and not any(p.startswith("P.S.") for p in _memo(d).paragraphs)
            and "Quarterly memo" in _memo(d).paragraphs
        ),
        ['key("ctrl+End shift+Home")', 'key("Delete BackSpace")', "save()", "done()"],
    ),
    Spec(
        "writer-table",
        "writer-memo",
        "In memo.odt, insert a table with 2 columns and 2 rows at the end, then save.",
        lambda d: (
            len(_memo(d).tables) == 1
            and len(_memo(d).tables[0]) == 2
            and all(len(r) == 2 for r in _memo(d).tables[0])
        ),
        [
            'key("ctrl+End Return")',
            'key("ctrl+F12")',
            "wait()",
            "click('Insert')",
            "save()",
            "done()",
        ],
    ),
    Spec(
        "writer-find-replace",
        "writer-memo",
        "In memo.odt, use Find & Replace to replace every 'colour' with 'color', then save.",
        lambda d: _memo(d).paragraphs == [p.replace("colour", "color") for p in MEMO],
        [
            'key("ctrl+h")',
            "wait()",
            'type("colour")',
            'key("alt+p")',  # the dialog's Replace field (its mnemonic)
            'type("color")',
            "click('Replace All')",
            "click('Close')",
            "save()",
            "done()",
        ],
    ),
    Spec(
        "mousepad-append",
        "mousepad-notes",
        "In notes.txt, add a line 'milk' at the end of the list, then save.",
        lambda d: (
            [x for x in _notes(d) if x][-1:] == ["milk"]
            and _notes(d)[: len(NOTES.splitlines())] == NOTES.splitlines()
        ),
        ['key("ctrl+End")', 'type("milk\\n")', "save()", "done()"],
    ),
    Spec(
        "mousepad-delete-line",
        "mousepad-notes",
        "In notes.txt, delete the line 'bread', keeping the others, then save.",
        lambda d: (
            bool(_notes(d))
            and "bread" not in _notes(d)
            and [x for x in _notes(d) if x] == [x for x in NOTES.splitlines() if x != "bread"]
        ),
        ['key("ctrl+Home Down Down shift+Down")', 'key("Delete")', "save()", "done()"],
    ),
]
_BY_NAME = {s.name: s for s in SPECS}


def _task(s: Spec) -> Task:
    return Task(
        env="desktop",
        name=s.name,
        instruction=s.instruction,
        setup={"start": s.start},
        origin="benchmark",
        gold={"check": s.name},
        reference=list(s.gold),
    )


def load_suite(name: str) -> list[Task]:
    if name != SUITE:
        raise EnvError(f"unknown suite {name!r} for desktop; known: {SUITE}")
    return [_task(s) for s in SPECS]


def sample() -> list[Task]:
    """One task per application. The text editor comes first: `lbi envs check` resets the
    first sample task nine times (reproducibility, bad actions, close cycles), and Mousepad
    starts in a third of LibreOffice's time; both LibreOffice apps still run their gold."""
    names = ["mousepad-append", "calc-set-cell", "writer-append"]
    return [_task(_BY_NAME[n]) for n in names]


def start_of(name: str) -> str:
    spec = _BY_NAME.get(name)
    return spec.start if spec else ""


def check(task: Task, workdir: Path) -> bool:
    """Run the task's checker on the episode's folder; a task without one never passes."""
    spec = _BY_NAME.get(str(task.gold.get("check", "")))
    return bool(spec and spec.check(workdir))
