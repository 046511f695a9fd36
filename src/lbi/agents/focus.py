"""The part of an observation a step's action refers to, within a character budget.

A worked example is only useful if it shows what its action acted on. Cutting each observation
to its first N characters loses the acted-on element whenever it sits low on the page (on
MiniWoB it was missing from 23 of 68 gold steps at 600 characters). Instead we keep the lines
the action names — the element ids of a web action (`click('12')` -> the line `[12] ...`), the
tables of a SQL query, otherwise lines sharing words with the action — then their neighbours
(the element's context), then the observation's first line (the goal), then the rest from the
top, until the budget is spent. Dropped runs of lines become one `...` line.
"""

from __future__ import annotations

import re

# `file:///long/path/to/task.html#frag` -> `task.html#frag`: the same long URL on the URL line,
# the root node and every link ate half of a 600-character example on MiniWoB.
_FILE_URL = re.compile(r"file://[^\s'\"]*/([^/\s'\"]*)")
_QUOTED = re.compile(r"'([^'\\]*)'|\"([^\"\\]*)\"")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_SQL_TABLE = re.compile(r"\b(?:from|join|into|update|table)\s+[`\"\[]?([A-Za-z_][\w]*)", re.I)
_STOP = {
    "select", "from", "where", "and", "or", "not", "the", "into", "values", "join", "on",
    "group", "order", "by", "limit", "as", "count", "click", "fill", "true", "false", "none",
}  # fmt: skip
GAP = "..."


def strip_noise(observation: str) -> str:
    """Shorten `file://` URLs to their last path part (they repeat and carry nothing)."""
    return _FILE_URL.sub(r"\1", observation)


def anchors(action: str) -> tuple[list[str], list[str]]:
    """What an action refers to: (element ids, words). Ids are short quoted alnum arguments."""
    ids = []
    for m in _QUOTED.finditer(action):
        arg = m.group(1) if m.group(1) is not None else m.group(2)
        if re.fullmatch(r"[a-zA-Z]?\d+[a-zA-Z0-9]*", arg or ""):
            ids.append(arg)
    tables = _SQL_TABLE.findall(action)
    if tables:
        return ids, tables
    words = [w for w in _WORD.findall(action) if len(w) >= 3 and w.lower() not in _STOP]
    return ids, words


def _hits(lines: list[str], action: str) -> list[int]:
    ids, words = anchors(action)
    if ids:
        marks = [f"[{i}]" for i in ids]
        found = [n for n, line in enumerate(lines) if any(m in line for m in marks)]
        if found:
            return found
    pats = [re.compile(rf"\b{re.escape(w)}\b", re.I) for w in words]
    return [n for n, line in enumerate(lines) if any(p.search(line) for p in pats)]


def _order(n_lines: int, hits: list[int], radius: int = 3) -> list[int]:
    """Lines by priority: hits, their neighbours by distance, the first line, then the rest."""
    order: list[int] = []
    seen: set[int] = set()

    def take(i: int) -> None:
        if 0 <= i < n_lines and i not in seen:
            seen.add(i)
            order.append(i)

    for h in hits:
        take(h)
    take(0)
    for d in range(1, radius + 1):
        for h in hits:
            take(h - d)
            take(h + d)
    for i in range(n_lines):
        take(i)
    return order


def focus(observation: str, action: str, budget: int) -> str:
    """The observation, shortened to about `budget` characters around what `action` refers to."""
    text = strip_noise(observation)
    if len(text) <= budget:
        return text
    lines = text.splitlines()
    keep: set[int] = set()
    used = 0
    for i in _order(len(lines), _hits(lines, action)):
        cost = len(lines[i]) + 1
        if used + cost > budget:
            if not keep:  # one huge line: keep its start rather than nothing
                return lines[i][:budget]
            continue
        keep.add(i)
        used += cost
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in keep:
            out.append(line)
        elif not out or out[-1] != GAP:
            out.append(GAP)
    return "\n".join(out)
