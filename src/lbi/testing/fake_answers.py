"""The fake server's answers, as pure functions of the request: a JSON value for a schema, the
next scripted action for a REASON/ACTION prompt, the one string a literal grammar allows.
Deterministic (hashes of the prompt), so a test or benchmark run gives the same records twice."""

from __future__ import annotations

import hashlib
import re
from typing import Any


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Items are fenced as <example-BOUNDARY id="N"> (prompts.fence), or plain in older prompts.
BLOCK_ID = re.compile(r'<(?:excerpt|example)(?:-[0-9a-f]+)? id="(\d+)">')
_HISTORY_LINE = re.compile(r"^\s*\d+\. ACTION: ", re.MULTILINE)
_OBJECTIVE = re.compile(r"^OBJECTIVE: (.*)$", re.MULTILINE)


def example_for(
    schema: dict[str, Any],
    seed: str = "",
    items: int = 1,
    numbered: bool = False,
    _position: int | None = None,
) -> Any:
    """A deterministic value that satisfies a simple JSON schema.

    The outermost arrays hold `items` values (at least `minItems`), each from its own seed so
    they differ; with `numbered`, an integer inside the N-th item is N (an id the caller set).
    """
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {
            name: example_for(sub, seed + name, items, numbered, _position)
            for name, sub in props.items()
        }
    if kind == "array":
        n = max(items, int(schema.get("minItems", 0)))
        sub = schema.get("items") or {}
        # Item 0 keeps the plain seed, so one-item answers are what they always were.
        seeds = [seed if k == 0 else f"{seed}#{k}" for k in range(n)]
        return [example_for(sub, seeds[k], 1, numbered, k + 1) for k in range(n)]
    if kind == "integer":
        if numbered and _position is not None:
            return _position
        return int(digest(seed or "0"), 16) % 100
    if kind == "number":
        return (int(digest(seed or "0"), 16) % 1000) / 10
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = f"text-{digest(seed)[:8]}"
    return text.ljust(int(schema.get("minLength", 0)), "x")


def react_answer(messages: list[dict[str, Any]], actions: list[str]) -> str | None:
    """The next of `actions` for a ReAct prompt (None if the prompt is not one)."""
    system = str(messages[0].get("content") or "") if messages else ""
    if not actions or "REASON:" not in system or "ACTION:" not in system:
        return None
    prompt = str(messages[-1].get("content") or "")
    step = len(_HISTORY_LINE.findall(prompt))
    action = actions[min(step, len(actions) - 1)]
    # The reason names the objective (as a model's would), so different tasks give different
    # trajectories and their windows are not answered from the cache as duplicates.
    objective = _OBJECTIVE.search(prompt)
    about = digest(objective.group(1) if objective else prompt)[:8]
    return f"REASON: step {step + 1} toward objective {about}.\nACTION: {action}"


def literal(body: dict[str, Any]) -> str | None:
    """The one string a `root ::= "..."` grammar allows (what the probe sends)."""
    found = re.fullmatch(r'\s*root ::= "([^"]*)"\s*', str(body.get("grammar") or ""))
    return found.group(1) if found else None
