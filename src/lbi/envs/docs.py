"""Documentation helpers environments share: a folder of text files as docs, markdown sections."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from lbi.types import Doc


def docs_from_folder(env: str, folder: str | Path) -> list[Doc]:
    root = Path(folder)
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in {".md", ".markdown", ".txt", ".rst"}:
            text = p.read_text(errors="replace").strip()
            if text:
                out.append(Doc(env=env, source=str(p.relative_to(root)), title=p.stem, text=text))
    return out


def docs_from_path(env: str, path: str | Path) -> list[Doc]:
    """A folder of documentation files, or one file."""
    p = Path(path)
    if p.is_dir():
        return docs_from_folder(env, p)
    if not p.is_file():
        raise FileNotFoundError(f"no documentation at {p}")
    text = p.read_text(errors="replace").strip()
    return [Doc(env=env, source=p.name, title=p.stem, text=text)] if text else []


_MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def docs_from_source(env: str, source: str | Path) -> list[Doc]:
    """`--docs`: a folder or file of documentation, or `module:ATTR` naming documentation in
    Python (a string of Markdown, a list of strings or `Doc`s, or a path)."""
    text = str(source)
    if Path(text).exists() or not _MODULE_ATTR.match(text):
        return docs_from_path(env, text)
    module, _, attr = text.partition(":")
    try:
        value: Any = importlib.import_module(module)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as e:
        raise FileNotFoundError(f"no documentation at {text}: neither a path nor {e}") from None
    if isinstance(value, Path):
        return docs_from_path(env, value)
    if not isinstance(value, str | list | tuple):
        raise FileNotFoundError(
            f"documentation {text} is a {type(value).__name__}: give a string, a list or a path"
        )
    items = [value] if isinstance(value, str) else list(value)
    docs = []
    for n, item in enumerate(items):
        if isinstance(item, Doc):
            docs.append(item)
        elif str(item).strip():
            docs.append(Doc(env=env, source=f"{text}#{n}", title=attr, text=str(item).strip()))
    return docs


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def split_markdown(text: str, max_level: int = 2) -> list[tuple[str, str]]:
    """Split markdown at headings of level <= max_level into (title, section) pairs; deeper
    headings stay inside their parent so a section keeps its sub-rules together."""
    sections: list[tuple[str, list[str]]] = []
    title, lines = "", list[str]()
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m and len(m.group(1)) <= max_level:
            if any(x.strip() for x in lines):
                sections.append((title, lines))
            title, lines = m.group(2).strip(), [line]
        else:
            lines.append(line)
    if any(x.strip() for x in lines):
        sections.append((title, lines))
    return [(t, "\n".join(body).strip()) for t, body in sections]
