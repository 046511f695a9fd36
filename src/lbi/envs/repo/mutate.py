"""Candidate bugs: small, single-line mutations of function bodies, found with `ast`.

Kinds (as SWE-smith's procedural bugs): a comparison operator flipped (`<` to `<=`, `==` to `!=`),
an arithmetic operator swapped (`+` to `-`), `and`/`or` swapped, a `not` dropped, an integer
boundary moved by one, `True`/`False` swapped in a return, and the first two arguments of a call
swapped. Each is a text edit of one line, so the patch is as small as the bug.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">")}
_CMP |= {ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not")}
_CMP |= {ast.In: ("in", "not in")}
_BIN = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "//"), ast.FloorDiv: ("//", "*")}
_BIN |= {ast.Mod: ("%", "//")}
_BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


@dataclass(frozen=True)
class Mutation:
    path: str  # relative to the repository root
    line: int  # 1-based
    kind: str
    before: str  # the whole line
    after: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.kind, self.after)


def _swap_between(line: str, start: int, end: int, old: str, new: str) -> str | None:
    """Replace the one `old` token found in line[start:end] by `new`."""
    gap = line[start:end]
    stripped = gap.strip().strip("()").strip()
    if stripped != old:
        return None
    i = gap.index(old)
    return line[: start + i] + new + line[start + i + len(old) :]


def _one_line(node: ast.AST) -> bool:
    return getattr(node, "lineno", 0) == getattr(node, "end_lineno", -1)


def _in_functions(tree: ast.Module) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for stmt in fn.body:
                nodes.extend(ast.walk(stmt))
    return nodes


def candidates(path: str, source: str) -> list[Mutation]:
    """Every single-line mutation of function bodies in `source`, sorted by position and kind."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    out: dict[tuple[str, int, str, str], Mutation] = {}

    def add(lineno: int, kind: str, new_line: str | None) -> None:
        old = lines[lineno - 1]
        if new_line is not None and new_line != old:
            m = Mutation(path, lineno, kind, old, new_line)
            out.setdefault(m.key, m)

    for node in _in_functions(tree):
        if not _one_line(node):
            continue
        ln = getattr(node, "lineno", 0)
        line = lines[ln - 1]
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and _one_line(node.left):
            pair = _CMP.get(type(node.ops[0]))
            right = node.comparators[0]
            if pair and right.lineno == ln:
                new = _swap_between(line, node.left.end_col_offset or 0, right.col_offset, *pair)
                add(ln, "comparison", new)
        elif isinstance(node, ast.BinOp) and _one_line(node.left) and node.right.lineno == ln:
            pair = _BIN.get(type(node.op))
            if pair:
                new = _swap_between(
                    line, node.left.end_col_offset or 0, node.right.col_offset, *pair
                )
                add(ln, "operator", new)
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            a, b = node.values
            if _one_line(a) and b.lineno == ln:
                new = _swap_between(
                    line, a.end_col_offset or 0, b.col_offset, *_BOOL[type(node.op)]
                )
                add(ln, "condition", new)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            s, e = node.col_offset, node.operand.col_offset
            if line[s:e].strip() == "not":
                add(ln, "negation", line[:s] + line[e:])
        elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 9:
            s, e = node.col_offset, node.end_col_offset or 0
            if line[s:e] == str(node.value):
                add(ln, "boundary", line[:s] + str(node.value + 1) + line[e:])
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
            if node.value.value in (True, False) and isinstance(node.value.value, bool):
                s, e = node.value.col_offset, node.value.end_col_offset or 0
                add(ln, "return", line[:s] + str(not node.value.value) + line[e:])
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not node.keywords:
            a, b = node.args[0], node.args[1]
            if _one_line(a) and _one_line(b) and a.lineno == b.lineno == ln:
                ta, tb = (
                    line[a.col_offset : a.end_col_offset],
                    line[b.col_offset : b.end_col_offset],
                )
                if ta != tb and "*" not in ta + tb:
                    between = line[a.end_col_offset : b.col_offset]
                    new = line[: a.col_offset] + tb + between + ta + line[b.end_col_offset :]
                    add(ln, "arguments", new)
    return sorted(out.values(), key=lambda m: m.key)
