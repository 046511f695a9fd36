"""Documentation for the web environments: one document per MiniWoB task family, plus the
action reference written from the action set itself.

The per-task text comes from the `miniwob` package's own task docstrings (description,
example utterances, utterance fields, notes), read with `ast` so that listing docs never
imports Selenium. Variants of one task (-easy, -nodelay, -transfer...) form one family, since
they share instructions and differ only in difficulty or timing.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from lbi.envs.base import ActionSpace
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


def _family_text(fam: str, tasks: list[str]) -> str:
    from lbi.envs.web.miniwob import task_classes

    lines = [f"# MiniWoB task family `{fam}`", ""]
    for t in tasks:
        lines.append(f"## Task `{t}`: {task_classes()[t].desc}")
        body = task_docstrings().get(t, "")
        if body:
            lines += ["", body.replace("## ", "### ")]
        lines.append("")
    return "\n".join(lines).strip()


def action_reference(env: str, space: ActionSpace) -> Doc:
    text = (
        "# Web actions\n\n"
        "Each step is one call. The observation is the page's accessibility tree; every element "
        "you can act on has an id in square brackets, e.g. `[14] textbox 'Name'` or "
        "`[15] button 'Submit'`. Pass that id as a string: `fill('14', 'Ann')`, `click('15')`. "
        "Ids change when the page changes, so read them from the latest observation.\n\n"
        f"{space.description}"
    )
    return Doc(env=env, source="web#actions", title="Web actions", text=text)


def miniwob_docs(env: str, tasks: list[str], space: ActionSpace) -> list[Doc]:
    families: dict[str, list[str]] = {}
    for t in tasks:
        families.setdefault(family(t), []).append(t)
    docs = [
        Doc(
            env=env,
            source=f"miniwob/{fam}",
            title=f"MiniWoB {fam}",
            text=_family_text(fam, members),
            setup={"task": sorted(members)[0]},  # tasks written from this doc start here
        )
        for fam, members in sorted(families.items())
    ]
    return [action_reference(env, space), *docs]
