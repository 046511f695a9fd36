"""BrowserGym's high-level actions: description, GBNF grammar and execution, all from one set.

The description comes from the action set's own `describe()`, and the grammar is generated
from the signatures of the same Python functions, so the two can never drift apart. Small
models write almost no parseable action free-form (SmolLM2: 0%) and always do when
constrained; the grammar is the difference.

Execution goes through BrowserGym's parser (`to_python_code`), which accepts only calls of
the listed functions with literal arguments, so model text never reaches `exec` unparsed.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from lbi.envs.base import ActionSpace

MINIWOB_SUBSETS = ["bid"]  # element actions; MiniWoB needs no navigation or chat
SITE_SUBSETS = ["chat", "bid", "nav"]  # send_msg_to_user answers questions; goto/go_back navigate

_Q1 = '"\'"'  # the GBNF literal for a single quote
_Q2 = '"\\""'  # the GBNF literal for a double quote
_STR = f"({_Q2} [^\"\\\\\\n]* {_Q2} | {_Q1} [^'\\\\\\n]* {_Q1})"
_BID = f"({_Q1} [a-zA-Z0-9]+ {_Q1} | {_Q2} [a-zA-Z0-9]+ {_Q2})"
_NUM = '"-"? [0-9]+ ("." [0-9]+)?'
_BOOL = r'("True" | "False")'


ACTION_TIMEOUT_MS = 3000  # a click on a covered/hidden element fails after this, not 30 s
# BrowserGym's action functions hard-code `timeout=500` on every element call, which overrides
# the context's default; under load the scripted solutions failed on it. The functions reach the
# page as source text (`python_includes`), so the literal is replaced there with ours.
_BG_TIMEOUT = "timeout=500"


def action_set(subsets: list[str], timeout_ms: int = ACTION_TIMEOUT_MS) -> Any:
    from browsergym.core.action.highlevel import HighLevelActionSet

    # One action per step keeps the trajectory aligned with observations for backward construction.
    aset = HighLevelActionSet(subsets=subsets, multiaction=False, strict=False)
    aset.python_includes = aset.python_includes.replace(_BG_TIMEOUT, f"timeout={int(timeout_ms)}")
    return aset


def _functions(aset: Any) -> dict[str, Callable[..., Any]]:
    from browsergym.core.action import functions

    return {name: getattr(functions, name) for name in aset.action_set}


def _value_rule(name: str, annotation: Any) -> str:
    if name.endswith("bid"):
        return _BID
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return "(" + " | ".join(_value_rule("", a) for a in typing.get_args(annotation)) + ")"
    if origin is typing.Literal:
        return (
            "(" + " | ".join(f'"\\"{a}\\"" | "\'{a}\'"' for a in typing.get_args(annotation)) + ")"
        )
    if origin is list:
        inner = (
            _value_rule("", typing.get_args(annotation)[0]) if typing.get_args(annotation) else _STR
        )
        return f'"[" ({inner} (", " {inner})*)? "]"'
    if annotation is bool:
        return _BOOL
    if annotation in (int, float):
        return _NUM
    return _STR


def _call_rule(name: str, fn: Callable[..., Any]) -> str:
    """`name(required, ...)`, optional arguments allowed positionally and in order."""
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())
    required = [
        _value_rule(p.name, hints.get(p.name, str))
        for p in params
        if p.default is inspect.Parameter.empty
    ]
    optional = [
        _value_rule(p.name, hints.get(p.name, str))
        for p in params
        if p.default is not inspect.Parameter.empty
    ]
    tail = ""
    for i in reversed(range(len(optional))):  # nested: (", " a (", " b)?)?
        comma = '", " ' if (i > 0 or required) else ""
        tail = f"({comma}{optional[i]}{' ' + tail if tail else ''})?"
    parts = [f'"{name}("', ' ", " '.join(required), tail, '")"']
    return " ".join(p for p in parts if p)


def grammar(aset: Any) -> str:
    """A GBNF rule body matching exactly one call of one action of the set."""
    return " | ".join(f"({_call_rule(n, f)})" for n, f in sorted(_functions(aset).items()))


def action_space(subsets: list[str], examples: list[str]) -> ActionSpace:
    aset = action_set(subsets)
    # No sample calls: a concrete, plausible action in the system prompt is what a weak model
    # copies on every step (SmolLM2 answered BrowserGym's `click('12')` example throughout).
    text = aset.describe(with_long_description=False, with_examples=False).strip()
    text = text.split("Only a single action can be provided at once.")[0].strip()
    description = (
        "Act on the page with exactly one function call per step. Elements are named by the id in "
        "square brackets before them in the accessibility tree: the element on the line "
        f"`[ID] button 'Submit'` is clicked with click('ID').\n\n{text}"
    )
    return ActionSpace(
        description=description, grammar=grammar(aset), examples=examples, language="python"
    )


def parse(aset: Any, action: str) -> str:
    """Action text -> Python code of BrowserGym calls; ValueError/NameError on bad text."""
    if not isinstance(action, str) or not action.strip():
        raise ValueError("empty action; write one call such as click('12')")
    return str(aset.to_python_code(action))


def execute(code: str, page: Any, on_message: Callable[[str], None]) -> None:
    """Run parsed action code against `page`; messages to the user go to `on_message`."""
    from browsergym.core.action.base import execute_python_code

    execute_python_code(
        code, page, send_message_to_user=on_message, report_infeasible_instructions=on_message
    )
