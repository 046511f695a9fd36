"""Documentation for the desktop: LibreOffice's own HTML help, plus the desktop and its actions.

The help pages come from Debian's `libreoffice-help-en-us`. The task-oriented "guide" pages of
Calc and Writer (how to sort, how to insert a table, ...) are the ones tasks can be written
from; each becomes one Doc (the pipeline chunks long ones) whose tasks start on a Calc or
Writer document. HTML is reduced to text with the standard library's parser.
"""

from __future__ import annotations

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from lbi.envs.base import ActionSpace
from lbi.types import Doc

HELP_ROOT = Path("/usr/share/libreoffice/help/en-US/text")
GUIDES = {"scalc": ("Calc", "calc-scores"), "swriter": ("Writer", "writer-memo")}
_SKIP = {"script", "style", "head"}
_BLOCK = {"p", "h1", "h2", "h3", "h4", "li", "tr", "div", "br", "table"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "h1":
            self._in_h1 = True
            self.parts.append("# ")
        elif tag in ("h2", "h3"):
            self.parts.append("## ")
        elif tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        if tag == "h1":
            self._in_h1 = False
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._in_h1:
            self.title += data


def html_text(html: str) -> tuple[str, str]:
    """(title, text) of one help page."""
    p = _Text()
    p.feed(html)
    text = re.sub(r"[ \t]+", " ", "".join(p.parts))
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return p.title.strip(), text


@cache
def help_docs(env: str = "desktop", root: Path = HELP_ROOT) -> tuple[Doc, ...]:
    docs = []
    for module, (app, start) in GUIDES.items():
        for page in sorted((root / module / "guide").glob("*.html")):
            title, text = html_text(page.read_text(errors="replace"))
            if len(text) < 200:  # index pages and stubs teach nothing to act on
                continue
            docs.append(
                Doc(
                    env=env,
                    source=f"libreoffice-help/{module}/guide/{page.name}",
                    title=f"LibreOffice {app}: {title or page.stem}",
                    text=text,
                    setup={"start": start},
                )
            )
    return tuple(docs)


def overview(env: str, space: ActionSpace) -> list[Doc]:
    desk = (
        "# The desktop\n\n"
        "A virtual screen (1280x800) runs one application at a time, opened on the task's file: "
        "LibreOffice Calc on a spreadsheet, LibreOffice Writer on a text document, or Mousepad "
        "(a plain text editor) on a .txt file. Work is judged only by the saved file, so finish "
        "with save() and then done(). Menus open with click('Format') and list their items; "
        "dialogs (Find and Replace, Insert Table, ...) appear as their own window.\n\n"
        "Mousepad keys: ctrl+Home / ctrl+End go to the start / end of the file, Home / End to "
        "the start / end of a line, shift with a movement key selects, ctrl+s saves, ctrl+r "
        "opens search and replace."
    )
    return [
        Doc(
            env=env,
            source="desktop#overview",
            title="The desktop",
            text=desk,
            setup={"start": "mousepad-notes"},
        ),
        Doc(
            env=env,
            source="desktop#actions",
            title="Desktop actions",
            text=f"# Desktop actions\n\n{space.description}",
        ),
    ]


def desktop_docs(space: ActionSpace, env: str = "desktop") -> list[Doc]:
    return [*overview(env, space), *help_docs(env)]
