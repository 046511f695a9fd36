"""What a suite file's checks compare: an episode's outcome, its final answer, normalized values,
query rows, and the `python` check's function (suite_file.py scores with them)."""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lbi.envs.base import EnvError


@dataclass
class Outcome:
    """What an episode left behind, for a check."""

    actions: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    observation: str = ""

    @property
    def answer(self) -> str:
        if "answer" in self.info:
            return str(self.info["answer"])
        return final_answer(self.actions[-1]) if self.actions else ""


def final_answer(action: str) -> str:
    """`send_msg_to_user('24')` -> 24; `{"name": .., "arguments": {"content": "24"}}` -> 24;
    `submit 24` / `answer 24` -> 24; anything else is the answer itself."""
    text = action.strip()
    if text.startswith("{"):
        try:
            args = json.loads(text).get("arguments") or {}
            values = [v for v in args.values() if isinstance(v, str | int | float)]
            return str(values[0]) if values else ""
        except (ValueError, AttributeError):
            return text
    head, _, rest = text.partition("(")
    if rest.endswith(")") and head.isidentifier():
        try:
            value = ast.literal_eval(rest[:-1].strip() or "''")
            return str(value[0] if isinstance(value, tuple) else value)
        except (ValueError, SyntaxError):
            return rest[:-1]
    word, _, rest = text.partition(" ")
    return rest.strip() if word.lower() in ("submit", "answer", "finish") and rest else text


def normalize(text: Any) -> str:
    return " ".join(str(text).strip().strip("'\"").rstrip(".").lower().split())


def same(said: Any, want: Any) -> bool:
    a, b = normalize(said), normalize(want)
    try:
        return float(a.replace(",", "")) == float(b.replace(",", ""))
    except ValueError:
        return a == b


def cells(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(normalize(c) for r in rows for c in r)


def rows_match(rows: list[tuple[Any, ...]], expect: Any) -> bool:
    if not isinstance(expect, list):  # one value: the single cell
        return len(rows) == 1 and len(rows[0]) == 1 and same(rows[0][0], expect)
    want = [tuple(r) if isinstance(r, list) else (r,) for r in expect]
    key = lambda rs: sorted(tuple(normalize(c) for c in r) for r in rs)  # noqa: E731
    return len(rows) == len(want) and key(rows) == key(want)


def load_function(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not attr:
        raise EnvError(f"a python check needs module:function, got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise EnvError(f"python check {spec}: {e}") from None
    if not callable(fn):
        raise EnvError(f"python check {spec}: not callable")
    return fn  # type: ignore[no-any-return]
