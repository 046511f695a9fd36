"""Documentation of a repository, for task synthesis: README, docs folder and a public-API summary.

Text files are split at headings (then blank lines) into chunks of at most `MAX_DOC_CHARS`; the API
summary lists each module's public classes and functions with their signatures and the first line
of their docstrings, read with `ast` (nothing is imported or run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from lbi.envs.repo.workspace import iter_files
from lbi.types import Doc

MAX_DOC_CHARS = 3500
_TEXT = (".md", ".rst", ".txt")
_HEADING = re.compile(r"^(#{1,3} |\S.*\n[=\-~^]{3,}$)", re.MULTILINE)


def chunk(text: str, limit: int = MAX_DOC_CHARS) -> list[str]:
    """Split at headings, then at blank lines, then hard, so no chunk exceeds `limit`."""
    starts = sorted({0, *(m.start() for m in _HEADING.finditer(text))})
    sections = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    pieces: list[str] = []
    for s in sections:
        while len(s) > limit:
            cut = s.rfind("\n\n", 0, limit)
            cut = cut if cut > limit // 4 else limit
            pieces.append(s[:cut])
            s = s[cut:]
        pieces.append(s)
    out: list[str] = []
    for p in pieces:
        if out and len(out[-1]) + len(p) <= limit:
            out[-1] += p
        elif p.strip():
            out.append(p)
    return [c.strip() for c in out if c.strip()]


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = ast.unparse(node.args)
    ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({args}){ret}"


def _first_line(node: ast.AST) -> str:
    doc = (
        ast.get_docstring(node)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        else None
    )
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def module_summary(path: Path, module: str) -> str:
    """Markdown for one module's public names, or "" when it has none or does not parse."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return ""
    lines = []
    for node in tree.body:
        if getattr(node, "name", "_").startswith("_"):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines.append(f"- `{_signature(node)}`: {_first_line(node)}".rstrip(": "))
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            lines.append(f"- `class {node.name}({bases})`: {_first_line(node)}".rstrip(": "))
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    not sub.name.startswith("_") or sub.name == "__init__"
                ):
                    lines.append(f"  - `{_signature(sub)}`: {_first_line(sub)}".rstrip(": "))
    if not lines:
        return ""
    head = f"## Module `{module}`\n\n{_first_line(tree)}".rstrip() + "\n\n"
    return head + "\n".join(lines) + "\n"


def _is_test(rel: Path) -> bool:
    return any(p in ("tests", "test", "testing") for p in rel.parts[:-1]) or rel.name.startswith(
        ("test_", "conftest")
    )


def repo_docs(env: str, root: Path, name: str) -> list[Doc]:
    """README and docs-folder chunks, then the API summary in chunks of whole modules."""
    docs: list[Doc] = []
    files = iter_files(root)
    texts = [f for f in files if f.parent == root and f.name.lower().startswith("readme")]
    texts += [
        f
        for f in files
        if f.suffix in _TEXT and f.relative_to(root).parts[0] in ("docs", "doc", "documentation")
    ]
    for f in texts:
        name_rel = str(f.relative_to(root))
        parts = chunk(f.read_text(encoding="utf-8", errors="replace"))
        for i, text in enumerate(parts, 1):
            title = name_rel if len(parts) == 1 else f"{name_rel} (part {i} of {len(parts)})"
            docs.append(Doc(env=env, source=f"{name}/{name_rel}", title=title, text=text))
    summaries = []
    for f in files:
        rel = f.relative_to(root)
        if f.suffix != ".py" or _is_test(rel) or rel.parts[0] in ("docs", "examples", "setup.py"):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[0] == "src":
            parts = parts[1:]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and (text := module_summary(f, ".".join(parts))):
            summaries.append(text)
    api = chunk("\n".join(summaries)) if summaries else []
    for i, text in enumerate(api, 1):
        title = f"{name} API" + ("" if len(api) == 1 else f" (part {i} of {len(api)})")
        docs.append(Doc(env=env, source=f"{name}#api", title=title, text=f"# {title}\n\n{text}"))
    return docs
