"""Split documentation into chunks by headings, each within a token limit.

Token counts are estimated (4 characters a token): chunking only needs to keep prompts well
inside the context window, and an estimate keeps this free of any tokenizer dependency.
"""

from __future__ import annotations

import re

from lbi.types import Doc

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.MULTILINE)


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs; text before the first heading has an empty heading."""
    marks = list(_HEADING.finditer(text))
    if not marks:
        return [("", text)]
    out = []
    if text[: marks[0].start()].strip():
        out.append(("", text[: marks[0].start()]))
    for n, m in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(text)
        out.append((m.group(2), text[m.start() : end]))
    return out


def _split_long(text: str, max_chars: int) -> list[str]:
    """Split an over-long section at paragraph, then line, boundaries."""
    parts: list[str] = []
    buf = ""
    for para in re.split(r"(\n\s*\n)", text):
        if len(buf) + len(para) <= max_chars:
            buf += para
            continue
        if buf.strip():
            parts.append(buf)
        buf = ""
        while len(para) > max_chars:
            cut = para.rfind("\n", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            parts.append(para[:cut])
            para = para[cut:]
        buf = para
    if buf.strip():
        parts.append(buf)
    return parts


def chunk_docs(docs: list[Doc], max_tokens: int) -> list[Doc]:
    """Merge small sections and split large ones, so each chunk is one coherent topic."""
    max_chars = max_tokens * 4
    chunks: list[Doc] = []
    for doc in docs:
        pieces: list[tuple[str, str]] = []
        for heading, body in _sections(doc.text):
            for n, part in enumerate(_split_long(body, max_chars)):
                title = heading or doc.title
                pieces.append((f"{title} ({n + 1})" if n else title, part))
        merged: list[tuple[str, str]] = []
        for title, body in pieces:
            if merged and len(merged[-1][1]) + len(body) <= max_chars:
                merged[-1] = (merged[-1][0], merged[-1][1] + body)
            else:
                merged.append((title, body))
        for n, (title, body) in enumerate(merged):
            if body.strip():
                chunks.append(
                    Doc(
                        env=doc.env,
                        source=f"{doc.source}#{n}",
                        title=title or doc.title,
                        text=body.strip(),
                        setup=doc.setup,
                    )
                )
    return chunks
