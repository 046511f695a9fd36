"""Reads and drives the accessibility tree of the episode's desktop, one JSON request a line.

Why a separate process: AT-SPI's Python bindings (`pyatspi`, on GObject introspection) come
from Debian's python3, not from our virtualenv. Running them in a child under /usr/bin/python3
keeps `gi` out of the environment's interpreter, and the child dies with the episode's
session bus. It imports nothing from lbi (it is run by path).

Requests: {"op": "tree", "max_nodes": N, "rows": R, "cols": C} -> {"text", "window", "nodes"};
{"op": "act", "kind": "click"|"set_text"|"select"|"focus", "id": ID, "text": T} -> {"ok",
"detail", "xy"}; where an element cannot act itself, "xy" is its centre, for a real click.
Ids are the numbers printed in the latest tree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pyatspi  # type: ignore[import-not-found]

# Containers that only group other elements: not printed when they have no name.
_QUIET = {
    "panel",
    "filler",
    "scroll pane",
    "viewport",
    "layered pane",
    "split pane",
    "root pane",
    "unknown",
    "redundant object",
    "grouping",
    "section",
    "tool bar",
    "separator",
}
_STATES = [
    (pyatspi.STATE_FOCUSED, "focused"),
    (pyatspi.STATE_SELECTED, "selected"),
    (pyatspi.STATE_CHECKED, "checked"),
    (pyatspi.STATE_PRESSED, "pressed"),
    (pyatspi.STATE_EXPANDED, "expanded"),
]
_TEXT_ROLES = {"paragraph", "text", "entry", "heading", "table cell", "password text", "label"}
_WINDOWS = {"frame", "root pane", "dialog", "window"}
_VALUE_ROLES = {"slider", "spin button", "scroll bar", "progress bar", "dial"}
_BIG = 2000  # a table with more children than this lists its cells through the Table interface


class Tree:
    def __init__(self) -> None:
        self.nodes: dict[int, Any] = {}
        self.lines: list[str] = []

    def add(self, acc: Any, depth: int, line: str) -> None:
        i = len(self.nodes) + 1
        self.nodes[i] = acc
        self.lines.append("  " * depth + f"[{i}] {line}")


def _text(acc) -> str:
    try:
        t = acc.queryText()
        return str(t.getText(0, min(t.characterCount, 200)))
    except (NotImplementedError, Exception):
        return ""


def _cell_text(cell) -> str:
    """A cell's text in one round trip (a cell is short; `_text` asks for its length first)."""
    try:
        return str(cell.queryText().getText(0, -1))[:200]
    except (NotImplementedError, Exception):
        return ""


def _describe(acc, role: str, st, text: str | None = None) -> str:
    name = acc.name or ""
    line = f"{role} {name!r}" if name else role
    value = ""
    if text is not None:
        value = text
    elif role in _TEXT_ROLES or st.contains(pyatspi.STATE_EDITABLE):
        value = _text(acc)
    elif role in _VALUE_ROLES:
        try:
            value = f"{acc.queryValue().currentValue:g}"
        except (NotImplementedError, Exception):
            value = ""
    if value and value != name:
        line += f" value={value.replace(chr(10), ' ')[:120]!r}"
    flags = [label for state, label in _STATES if st.contains(state)]
    if role in _WINDOWS and "focused" in flags:
        flags.remove("focused")  # a window's own focus flag flickers while its content settles
    if not st.contains(pyatspi.STATE_ENABLED) and role not in _TEXT_ROLES:
        flags.append("disabled")
    return line + (f" ({', '.join(flags)})" if flags else "")


def _cells(tree: Tree, acc, depth: int, rows: int, cols: int) -> None:
    """A spreadsheet: only non-empty or focused cells of the top-left rows x cols."""
    table = acc.queryTable()
    for r in range(min(rows, table.nRows)):
        for c in range(min(cols, table.nColumns)):
            cell = table.getAccessibleAt(r, c)
            if cell is None:
                continue
            text = _cell_text(cell)
            st = cell.getState()
            if text or st.contains(pyatspi.STATE_FOCUSED):
                tree.add(cell, depth, _describe(cell, "cell", st, text))


def _walk(tree: Tree, acc, depth: int, opts: dict) -> None:
    if len(tree.nodes) >= opts["max_nodes"]:
        return
    try:
        role = acc.getRoleName()
        st = acc.getState()
        n = acc.childCount
    except Exception:
        return
    if depth > 0 and not st.contains(pyatspi.STATE_SHOWING):
        return
    if role == "table" and n > _BIG:
        tree.add(acc, depth, f"table {acc.name or ''!r} (cells listed when not empty)")
        _cells(tree, acc, depth + 1, opts["rows"], opts["cols"])
        return
    quiet = role in _QUIET and not acc.name
    if not quiet:
        tree.add(acc, depth, _describe(acc, role, st))
    if role == "menu" and depth > 0 and not _open(st):
        return  # a closed menu's items are not on screen; asking for them costs a round trip each
    for i in range(min(n, 500)):
        try:
            child = acc.getChildAtIndex(i)
        except Exception:
            continue
        if child is not None:
            _walk(tree, child, depth + (0 if quiet else 1), opts)


def _open(st) -> bool:
    return st.contains(pyatspi.STATE_EXPANDED) or st.contains(pyatspi.STATE_SELECTED)


def _windows() -> list:
    """Top-level windows of every application on this (private) bus, the active one first."""
    out = []
    desktop = pyatspi.Registry.getDesktop(0)
    for app in desktop:
        if app is None:
            continue
        for i in range(app.childCount):
            w = app.getChildAtIndex(i)
            if w is not None and w.getState().contains(pyatspi.STATE_SHOWING):
                out.append(w)
    out.sort(key=lambda w: not w.getState().contains(pyatspi.STATE_ACTIVE))
    return out


class Reader:
    def __init__(self) -> None:
        self.tree = Tree()

    def op_tree(self, req: dict) -> dict:
        self.tree = Tree()
        wins = _windows()
        if not wins:
            return {"text": "", "window": "", "nodes": 0}
        opts = {
            "max_nodes": req.get("max_nodes", 400),
            "rows": req.get("rows", 20),
            "cols": req.get("cols", 8),
        }
        _walk(self.tree, wins[0], 0, opts)
        return {
            "text": "\n".join(self.tree.lines),
            "window": wins[0].name or "",
            "nodes": len(self.tree.nodes),
        }

    def find(self, ref: object) -> Any:
        """An element by its id in the latest tree, or by its exact name (first in tree order)."""
        if isinstance(ref, int) or str(ref).isdigit():
            return self.tree.nodes.get(int(str(ref)))
        for acc in self.tree.nodes.values():
            try:
                if acc.name == ref:
                    return acc
            except Exception:
                continue
        return None

    def op_act(self, req: dict) -> dict:
        acc = self.find(req["id"])
        if acc is None:
            return {"ok": False, "detail": f"no element [{req['id']}] in the latest observation"}
        kind = req["kind"]
        if kind == "set_text":
            try:
                ok = bool(acc.queryEditableText().setTextContents(req.get("text", "")))
                return {"ok": ok, "detail": "text set" if ok else "the element refused the text"}
            except NotImplementedError:
                return {"ok": False, "detail": "not editable", "xy": _centre(acc)}
        if kind == "select":
            try:
                parent = acc.parent
                ok = bool(parent.querySelection().selectChild(acc.getIndexInParent()))
                if ok:
                    return {"ok": True, "detail": "selected"}
            except (NotImplementedError, Exception):
                pass
        if kind == "focus":
            try:
                return {"ok": bool(acc.queryComponent().grabFocus()), "detail": "focused"}
            except NotImplementedError:
                return {"ok": False, "detail": "cannot take focus"}
        return _do_action(acc)

    def handle(self, req: dict) -> dict:
        if req.get("op") == "tree":
            return self.op_tree(req)
        if req.get("op") == "act":
            return self.op_act(req)
        if req.get("op") == "apps":
            return {"apps": [a.name for a in pyatspi.Registry.getDesktop(0) if a is not None]}
        return {"error": f"unknown op {req.get('op')!r}"}


def _centre(acc) -> list[int] | None:
    try:
        x, y, w, h = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
    except (NotImplementedError, Exception):
        return None
    return [x + w // 2, y + h // 2] if w > 0 and h > 0 else None


def _do_action(acc) -> dict:
    try:
        action = acc.queryAction()
        names = [action.getName(i) for i in range(action.nActions)]
    except (NotImplementedError, Exception):
        names = []
    for wanted in ("click", "press", "activate", "toggle", "jump", "open"):
        if wanted in names:
            action.doAction(names.index(wanted))
            return {"ok": True, "detail": wanted}
    # No action of its own (a cell, a paragraph): the caller clicks its centre for real.
    return {"ok": False, "detail": "no action", "xy": _centre(acc)}


def main() -> None:
    reader = Reader()
    for line in sys.stdin:
        try:
            out = reader.handle(json.loads(line))
        except Exception as e:  # one bad request never ends the reader
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
