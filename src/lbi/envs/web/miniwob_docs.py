"""Documentation for `miniwob`: one document per MiniWoB task family.

The per-task text comes from the `miniwob` package's own task docstrings (description,
example utterances, utterance fields, notes), read with `ast` so that listing docs never
imports Selenium. Variants of one task (-easy, -nodelay, -transfer...) form one family, since
they share instructions and differ only in difficulty or timing.

The environment hands in each task's one-line description, so this module never imports the
environment (it used to, and the two imported each other).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from lbi.envs.base import ActionSpace
from lbi.envs.web.docs import action_reference
from lbi.types import Doc

_VARIANTS = re.compile(r"-(nodelay|easy|medium|hard|transfer|soft|large|turk|nl)\b")


def family(task: str) -> str:
    """`click-tab-2-hard` -> `click-tab-2`; `email-inbox-forward-nl-turk` -> `email-inbox-forward`."""
    return _VARIANTS.sub("", task)


@cache
def task_docstrings() -> dict[str, str]:
    """subdomain -> the docstring of its class in `miniwob.envs.miniwob_envs` ('' if absent)."""
    try:
        import miniwob
    except ImportError:
        return {}
    src = Path(miniwob.__file__).parent / "envs" / "miniwob_envs.py"
    out: dict[str, str] = {}
    for node in ast.parse(src.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "subdomain" for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant)
            ):
                out[str(stmt.value.value)] = (ast.get_docstring(node) or "").strip()
    return out


def _family_text(fam: str, tasks: list[str], descs: dict[str, str]) -> str:
    lines = [f"# MiniWoB task family `{fam}`", ""]
    for t in tasks:
        lines.append(f"## Task `{t}`: {descs[t]}")
        body = task_docstrings().get(t, "")
        if body:
            lines += ["", body.replace("## ", "### ")]
        lines.append("")
    return "\n".join(lines).strip()


def miniwob_docs(env: str, descs: dict[str, str], space: ActionSpace) -> list[Doc]:
    """The action reference, then one doc per family of the tasks in `descs` (name -> the
    task's one-line description), in `descs` order within a family."""
    families: dict[str, list[str]] = {}
    for t in descs:
        families.setdefault(family(t), []).append(t)
    docs = [
        Doc(
            env=env,
            source=f"miniwob/{fam}",
            title=f"MiniWoB {fam}",
            text=_family_text(fam, members, descs),
            setup={"task": sorted(members)[0]},  # tasks written from this doc start here
        )
        for fam, members in sorted(families.items())
    ]
    return [action_reference(env, space), *docs]
