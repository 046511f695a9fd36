"""`toy`: a tiny key-value store shipped as a test double for the environment contract.

It is small enough to reason about in tests (every action is instant and deterministic) and
real enough to exercise the whole pipeline: documentation, a benchmark suite with state-based
success checks, reference solutions, bad actions that come back as error observations.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, StepResult, register_env
from lbi.types import Doc, Task, content_id

if TYPE_CHECKING:
    from lbi.config import Config

DOCS = [
    (
        "Overview",
        "The toy store keeps string values under string keys. It starts empty unless the task seeds it.",
    ),
    (
        "Writing",
        "Use `set KEY VALUE` to store a value and `delete KEY` to remove a key. Keys are case-sensitive.",
    ),
    (
        "Reading",
        "Use `get KEY` to read one value and `list` to see every key with its value, sorted by key.",
    ),
    ("Finishing", "Use `submit` when the store holds what the task asks for. The episode ends."),
]

SUITE = [
    ("set-a", "Store the value 1 under the key a.", {}, {"a": "1"}, ["set a 1", "submit"]),
    (
        "set-two",
        "Store red under color and 3 under size.",
        {},
        {"color": "red", "size": "3"},
        ["set color red", "set size 3", "submit"],
    ),
    ("delete-x", "Remove the key x.", {"x": "9", "y": "2"}, {"y": "2"}, ["delete x", "submit"]),
    (
        "copy",
        "Copy the value of src into dst.",
        {"src": "42"},
        {"src": "42", "dst": "42"},
        ["get src", "set dst 42", "submit"],
    ),
    (
        "rename",
        "Rename key old to new, keeping its value.",
        {"old": "v"},
        {"new": "v"},
        ["get old", "set new v", "delete old", "submit"],
    ),
]


class ToyEnv:
    name = "toy"
    max_concurrency = 16

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.task: Task | None = None

    def docs(self) -> list[Doc]:
        return [
            Doc(env="toy", source=f"toy#{t.lower()}", title=t, text=f"# {t}\n\n{body}")
            for t, body in DOCS
        ]

    def action_space(self) -> ActionSpace:
        return ActionSpace(
            description="One command per action: `set KEY VALUE`, `get KEY`, `delete KEY`, `list`, `submit`.",
            grammar='("set " [a-zA-Z0-9_]+ " " [a-zA-Z0-9_]+) | ("get " [a-zA-Z0-9_]+) | ("delete " [a-zA-Z0-9_]+) | "list" | "submit"',
            examples=["list", "set a 1", "get a", "submit"],
            finish="submit",
        )

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self.task = task
        self.state = dict(task.setup.get("state", {}))
        return self._listing(), {"task_id": task.id}

    def _listing(self) -> str:
        if not self.state:
            return "The store is empty."
        return "\n".join(f"{k} = {v}" for k, v in sorted(self.state.items()))

    def step(self, action: str) -> StepResult:
        try:
            parts = shlex.split(action.strip())
        except ValueError as e:
            return f"Error: cannot parse action: {e}", 0.0, False, False, {"error": True}
        if not parts:
            return "Error: empty action.", 0.0, False, False, {"error": True}
        cmd, args = parts[0].lower(), parts[1:]
        if cmd == "set" and len(args) == 2:
            self.state[args[0]] = args[1]
            return f"OK: {args[0]} = {args[1]}", 0.0, False, False, {}
        if cmd == "get" and len(args) == 1:
            if args[0] not in self.state:
                return f"Error: no key {args[0]!r}.", 0.0, False, False, {"error": True}
            return f"{args[0]} = {self.state[args[0]]}", 0.0, False, False, {}
        if cmd == "delete" and len(args) == 1:
            if self.state.pop(args[0], None) is None:
                return f"Error: no key {args[0]!r}.", 0.0, False, False, {"error": True}
            return f"OK: deleted {args[0]}", 0.0, False, False, {}
        if cmd == "list" and not args:
            return self._listing(), 0.0, False, False, {}
        if cmd == "submit":
            want = self.task.gold.get("state") if self.task else None
            reward = 1.0 if want is not None and want == self.state else 0.0
            return "Submitted.", reward, True, False, {"submitted": True}
        return f"Error: unknown or malformed action {action!r}.", 0.0, False, False, {"error": True}

    def state_digest(self) -> str:
        return content_id(json.dumps(self.state, sort_keys=True))

    def close(self) -> None:
        self.state = {}

    def suites(self) -> list[str]:
        return ["toy-5"]

    def load_suite(self, name: str) -> list[Task]:
        if name != "toy-5":
            from lbi.envs.base import EnvError

            raise EnvError(f"unknown suite {name!r} for toy; known: toy-5")
        return [
            Task(
                env="toy",
                name=n,
                instruction=ins,
                setup={"state": start},
                origin="benchmark",
                gold={"state": want},
                reference=ref,
            )
            for n, ins, start, want, ref in SUITE
        ]

    def sample_tasks(self) -> list[Task]:
        return self.load_suite("toy-5")[:2]


@register_env("toy", "a tiny key-value store shipped for tests and demos")
def _factory(arg: str, config: Config) -> ToyEnv:
    return ToyEnv()
