"""A counter to bring to a target: a third-party lbi environment, found through its entry point."""

from __future__ import annotations

from typing import Any

from lbi.envs.base import ActionSpace, EnvError, StepResult
from lbi.types import Doc, Task

DOC = """# The counter

The counter starts at the task's start value. `add N` adds N (N may be negative);
`show` prints the value; `done` ends the episode and succeeds when the value is the target.
"""


class CounterEnv:
    name = "counter"
    max_concurrency = 4

    def __init__(self) -> None:
        self.value, self.target = 0, 0

    def docs(self) -> list[Doc]:
        return [Doc(env=self.name, source="counter.md", title="The counter", text=DOC)]

    def action_space(self) -> ActionSpace:
        return ActionSpace(
            description="One action: `add N`, `show` or `done`.",
            grammar='("add " "-"? [0-9]+) | "show" | "done"',
            examples=["show", "add 1", "done"],
            finish="done",
        )

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self.value, self.target = int(task.setup.get("start", 0)), int(task.gold.get("value", 0))
        return f"value = {self.value}", {}

    def step(self, action: str) -> StepResult:
        words = action.split()
        if words[:1] == ["add"] and len(words) == 2 and words[1].lstrip("-").isdigit():
            self.value += int(words[1])
            return f"value = {self.value}", 0.0, False, False, {}
        if words == ["show"]:
            return f"value = {self.value}", 0.0, False, False, {}
        if words == ["done"]:
            return "Done.", float(self.value == self.target), True, False, {}
        return f"Error: unknown action {action!r}.", 0.0, False, False, {"error": True}

    def state_digest(self) -> str:
        return str(self.value)

    def close(self) -> None:
        pass

    def suites(self) -> list[str]:
        return ["counter-3"]

    def load_suite(self, name: str) -> list[Task]:
        if name != "counter-3":
            raise EnvError(f"unknown suite {name!r}; known: counter-3")
        return [
            Task(
                env=self.name,
                name=f"to-{want}",
                instruction=f"Bring the counter from {start} to {want}.",
                setup={"start": start},
                gold={"value": want},
                reference=[f"add {want - start}", "done"],
                origin="benchmark",
            )
            for start, want in ((0, 3), (5, 2), (1, 1))
        ]

    def sample_tasks(self) -> list[Task]:
        return self.load_suite("counter-3")[:2]


def make_env(arg: str, config: Any) -> CounterEnv:
    """A counter to bring to a target (a plug-in environment for lbi's tests)."""
    return CounterEnv()
