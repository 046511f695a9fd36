"""Check a text action against the action space when the backend took no grammar.

llama.cpp constrains an answer to the environment's GBNF action rule (`ActionSpace.grammar`);
other endpoints cannot, so the agent checks the action it parsed before it runs: one that is
not in the action space becomes an error observation saying what the space allows, the step
is recorded and the environment is not stepped, so the model can correct itself.

The rule body is compiled to a Python regex for the subset of GBNF the shipped environments
use: string literals, character classes (`[a-z]`, `[^"\\n]`), `.`, groups, alternation and
the repetitions `? * + {m} {m,} {m,n}`. A rule body with anything else (a reference to another
rule, a whole grammar with `::=`) is not checked: `compile_gbnf` returns None, and the
environment's own parser stays the only check, as before.

The check is about what the action is, not how it is laid out: an action also passes when its
whitespace collapsed to single spaces matches (a SQL query over several lines), and in a
tool-use space when its canonical tool-call form does (`{'name': 'x'}` written with single
quotes or without spaces). The action that runs is always the one the model wrote.

At a step where the environment listed its valid actions (`info["valid_actions"]`,
lbi.envs.base.valid_actions), the check is that list instead (`listed_check`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lbi.envs.base import ActionSpace


class UnsupportedGrammar(ValueError):
    """A GBNF construct outside the compiled subset."""


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
_HEX = {"x": 2, "u": 4, "U": 8}


class _Parser:
    """Recursive descent over one rule body: alternatives of sequences of repeated atoms."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def _skip(self) -> None:
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch.isspace():
                self.i += 1
            elif ch == "#":  # a comment runs to the end of the line
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    def _peek(self) -> str:
        self._skip()
        return self.text[self.i] if self.i < len(self.text) else ""

    def _char(self) -> str:
        """One character of a literal or class, escapes resolved."""
        if self.i >= len(self.text):
            raise UnsupportedGrammar("unterminated literal or class")
        ch = self.text[self.i]
        self.i += 1
        if ch != "\\":
            return ch
        esc = self.text[self.i : self.i + 1]
        self.i += 1
        if esc in _ESCAPES:
            return _ESCAPES[esc]
        if esc in _HEX:
            digits = self.text[self.i : self.i + _HEX[esc]]
            self.i += _HEX[esc]
            try:
                return chr(int(digits, 16))
            except ValueError:
                raise UnsupportedGrammar(f"bad escape \\{esc}{digits}") from None
        raise UnsupportedGrammar(f"unknown escape \\{esc}")

    def parse(self) -> tuple[str, list[str]]:
        """(regex, the literals the alternatives may start with)."""
        pattern, starts = self.alternation()
        if self._peek():
            raise UnsupportedGrammar(f"unexpected {self.text[self.i :][:20]!r}")
        return pattern, starts

    def alternation(self) -> tuple[str, list[str]]:
        branches, starts = [self.sequence()], list[str]()
        while self._peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        for _, first in branches:  # `SELECT | select`: one is enough to show
            starts += [s for s in first if s.lower() not in {t.lower() for t in starts}]
        return "|".join(p for p, _ in branches), starts

    def sequence(self) -> tuple[str, list[str]]:
        items: list[tuple[str, list[str]]] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self.repeated())
        return "".join(p for p, _ in items), items[0][1] if items else []

    def repeated(self) -> tuple[str, list[str]]:
        atom, starts = self.atom()
        while self._peek() in ("?", "*", "+", "{"):
            op = self.text[self.i]
            self.i += 1
            if op == "{":
                end = self.text.find("}", self.i)
                spec = self.text[self.i : end].replace(" ", "") if end > 0 else ""
                if not re.fullmatch(r"\d+(,\d*)?", spec):
                    raise UnsupportedGrammar(f"bad repetition {{{spec}}}")
                self.i = end + 1
                op = f"{{{spec}}}"
            atom, starts = f"(?:{atom}){op}", []  # optional: the next item may start instead
        return atom, starts

    def atom(self) -> tuple[str, list[str]]:
        ch = self._peek()
        if ch == '"':
            self.i += 1
            chars = []
            while self.text[self.i : self.i + 1] != '"':
                chars.append(self._char())
            self.i += 1
            text = "".join(chars)
            return re.escape(text), [text] if text.strip() else []
        if ch == "[":
            return self.char_class(), []
        if ch == "(":
            self.i += 1
            inner, starts = self.alternation()
            if self._peek() != ")":
                raise UnsupportedGrammar("unclosed group")
            self.i += 1
            return f"(?:{inner})", starts
        if ch == ".":
            self.i += 1
            return "(?s:.)", []
        raise UnsupportedGrammar(f"unsupported construct at {self.text[self.i :][:20]!r}")

    def char_class(self) -> str:
        self.i += 1
        negate = self.text[self.i : self.i + 1] == "^"
        self.i += negate
        parts: list[str] = []
        while self.text[self.i : self.i + 1] != "]":
            low = self._char()
            if self.text[self.i : self.i + 1] == "-" and self.text[self.i + 1 : self.i + 2] != "]":
                self.i += 1
                parts.append(f"{_class_char(low)}-{_class_char(self._char())}")
            else:
                parts.append(_class_char(low))
        self.i += 1
        if not parts:
            raise UnsupportedGrammar("empty character class")
        return f"[{'^' if negate else ''}{''.join(parts)}]"


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def compile_gbnf(body: str) -> re.Pattern[str] | None:
    """The regex matching exactly the strings the GBNF rule body allows; None if the body uses
    a construct outside the supported subset (then nothing is checked)."""
    try:
        return re.compile(_Parser(body).parse()[0])
    except (UnsupportedGrammar, IndexError, re.error):
        return None


@dataclass
class ActionCheck:
    """The compiled action rule of one action space, and what to tell a model that missed it."""

    pattern: re.Pattern[str]
    space: ActionSpace
    starts: list[str]
    listed: list[str] = field(default_factory=list)  # this step's valid actions, if listed

    def allows(self, action: str) -> bool:
        return any(self.pattern.fullmatch(form) for form in _forms(action, self.space))

    def error(self, action: str) -> str | None:
        """None for an action in the space; else the error observation."""
        if self.allows(action):
            return None
        shown = " ".join(action.split())
        shown = shown if len(shown) <= 120 else shown[:120] + "..."
        if self.listed:
            more = len(self.listed) - _SHOWN
            valid = ", ".join(self.listed[:_SHOWN]) + (f" ... ({more} more)" if more > 0 else "")
            return (
                f"Error: `{shown}` is not one of the valid actions at this step; it was not run."
                f"\nValid actions: {valid}"
            )
        lines = [f"Error: `{shown}` is not an action of this environment; it was not run."]
        summary = self.space.description.strip().splitlines()[0] if self.space.description else ""
        if summary:
            lines.append(f"Allowed: {summary}")
        if len(self.starts) > 1:
            words = [s.strip() for s in self.starts[:24]]
            lines.append("An action starts with one of: " + ", ".join(words))
        if self.space.examples:
            lines.append("For example: " + " | ".join(self.space.examples[:4]))
        return "\n".join(lines)


_SHOWN = 40  # valid actions named in an error; the observation lists them all


def _forms(action: str, space: ActionSpace) -> list[str]:
    """The action as written, with its whitespace collapsed, and (tool spaces) canonical."""
    forms = [action.strip(), " ".join(action.split())]
    if space.tools:
        from lbi.envs.tools.actions import format_tool_action, parse_tool_action

        call = parse_tool_action(action)
        if not isinstance(call, Exception):
            forms.append(format_tool_action(call.name, call.arguments))
    return forms


def action_check(space: ActionSpace) -> ActionCheck | None:
    """The check for `space`, or None where it has no grammar or one outside the subset."""
    if not space.grammar:
        return None
    try:
        regex, starts = _Parser(space.grammar).parse()
        pattern = re.compile(regex)
    except (UnsupportedGrammar, IndexError, re.error):
        return None
    return ActionCheck(pattern, space, starts)


def listed_check(space: ActionSpace, actions: Sequence[str]) -> ActionCheck:
    """The check for a step at which the environment listed its valid actions: exactly one of
    them (as the grammar `actions_grammar(actions)` would allow), whitespace collapsed."""
    pattern = re.compile("|".join(re.escape(a) for a in actions))
    return ActionCheck(pattern, space, list(actions), listed=list(actions))
