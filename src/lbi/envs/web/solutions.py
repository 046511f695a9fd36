"""Scripted MiniWoB solutions: they test the checker path, not an agent.

BrowserGym ships no oracle for MiniWoB, so we wrote our own for a set of task families. Each
is a policy over what an agent sees and nothing else: it reads the goal and the accessibility
tree from the observation text, and acts by element id through the environment's `step`. A
solution that scores 1 therefore proves that observations carry what is needed, that our
actions reach the page, and that the task's own reward comes back.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbi.envs.base import EnvError
from lbi.types import Task

_LINE = re.compile(r"^(\t*)\[(\w+)\] (\S+) ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(.*)$")


@dataclass(frozen=True)
class El:
    bid: str
    role: str
    name: str
    rest: str

    @property
    def value(self) -> str:
        m = re.search(r"value=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", self.rest)
        return str(ast.literal_eval(m.group(1))) if m else ""

    @property
    def checked(self) -> bool:
        return "checked='true'" in self.rest


@dataclass(frozen=True)
class Seen:
    """The observation, split the way an agent would read it."""

    goal: str
    elements: list[El]

    def find(self, role: str, name: str | None = None) -> El:
        for el in self.elements:
            if el.role == role and (name is None or el.name == name):
                return el
        raise EnvError(f"no {role} {name!r} on the page")

    def all(self, role: str) -> list[El]:
        return [el for el in self.elements if el.role == role]


def read(observation: str) -> Seen:
    goal = observation.split("\n", 1)[0].removeprefix("Goal: ").strip()
    tree = observation.split("Accessibility tree:\n", 1)[-1]
    els = []
    for line in tree.splitlines():
        if m := _LINE.match(line):
            els.append(El(m.group(2), m.group(3), str(ast.literal_eval(m.group(4))), m.group(5)))
    return Seen(goal, els)


def _quoted(goal: str) -> list[str]:
    return re.findall(r'"([^"]*)"', goal)


def _fill_then(seen: Seen, done: list[str], boxes: list[tuple[El, str]], button: El) -> str:
    for box, text in boxes:
        action = f"fill({box.bid!r}, {text!r})"
        # A password box shows no value in the tree, so remember what we typed.
        if box.value != text and action not in done:
            return action
    return f"click({button.bid!r})"


def click_button(seen: Seen, done: list[str]) -> str:
    return f"click({seen.find('button', _quoted(seen.goal)[0]).bid!r})"


def click_test(seen: Seen, done: list[str]) -> str:
    want = re.search(r"button (\w+)", seen.goal)
    return f"click({seen.find('button', want.group(1) if want else None).bid!r})"


def click_button_sequence(seen: Seen, done: list[str]) -> str:
    return f"click({seen.find('button', ['ONE', 'TWO'][min(len(done), 1)]).bid!r})"


def click_dialog(seen: Seen, done: list[str]) -> str:
    label = _quoted(seen.goal)[0]
    return f"click({seen.find('button', 'Close' if label == 'x' else label).bid!r})"


def click_tab(seen: Seen, done: list[str]) -> str:
    n = re.search(r"Tab #(\d+)", seen.goal)
    return f"click({seen.find('link', f'Tab #{n.group(1) if n else 1}').bid!r})"


def _select_then_submit(role: str) -> Callable[[Seen, list[str]], str]:
    def policy(seen: Seen, done: list[str]) -> str:
        m = re.match(r"Select (.*?) and click Submit", seen.goal)
        wanted = (
            set() if not m or m.group(1) == "nothing" else set(re.split(r", | and ", m.group(1)))
        )
        for box in seen.all(role):
            if (box.name in wanted) != box.checked:
                return f"click({box.bid!r})"
        return f"click({seen.find('button', 'Submit').bid!r})"

    return policy


def choose_list(seen: Seen, done: list[str]) -> str:
    want = re.match(r"Select (.*) from the list", seen.goal)
    box = seen.find("combobox")
    if want and box.value != want.group(1):
        return f"select_option({box.bid!r}, {want.group(1)!r})"
    return f"click({seen.find('button', 'Submit').bid!r})"


def enter_text(seen: Seen, done: list[str]) -> str:
    text = _quoted(seen.goal)[0]
    if "lower case" in seen.goal:
        text = text.lower()
    elif "upper case" in seen.goal:
        text = text.upper()
    return _fill_then(seen, done, [(seen.find("textbox"), text)], seen.find("button", "Submit"))


def enter_password(seen: Seen, done: list[str]) -> str:
    pw = _quoted(seen.goal)[0]
    return _fill_then(
        seen, done, [(b, pw) for b in seen.all("textbox")], seen.find("button", "Submit")
    )


def login_user(seen: Seen, done: list[str]) -> str:
    user, pw = _quoted(seen.goal)[:2]
    boxes = seen.all("textbox")
    return _fill_then(seen, done, [(boxes[0], user), (boxes[1], pw)], seen.find("button", "Login"))


def focus_text(seen: Seen, done: list[str]) -> str:
    nth = re.search(r"(\d+)(?:st|nd|rd|th)", seen.goal)
    boxes = seen.all("textbox")
    return f"click({boxes[int(nth.group(1)) - 1 if nth else 0].bid!r})"


Policy = Callable[[Seen, list[str]], str]
SOLVERS: dict[str, Policy] = {
    "click-button": click_button,
    "unicode-test": click_button,
    "click-test": click_test,
    "click-test-2": click_test,
    "click-button-sequence": click_button_sequence,
    "click-dialog": click_dialog,
    "click-dialog-2": click_dialog,
    "click-tab": click_tab,
    "click-checkboxes": _select_then_submit("checkbox"),
    "click-checkboxes-large": _select_then_submit("checkbox"),
    "click-checkboxes-transfer": _select_then_submit("checkbox"),
    "click-option": _select_then_submit("radio"),
    "choose-list": choose_list,
    "enter-text": enter_text,
    "enter-text-2": enter_text,
    "enter-password": enter_password,
    "login-user": login_user,
    "focus-text": focus_text,
    "focus-text-2": focus_text,
}


def solve(env: Any, task: Task, seed: int, max_steps: int = 30) -> tuple[float, list[str]]:
    """Run the scripted policy for the task's MiniWoB task; return (reward, actions taken)."""
    name = task.setup.get("task") or task.name
    policy = SOLVERS.get(name)
    if policy is None:
        raise EnvError(
            f"no scripted solution for MiniWoB task {name!r}; have: {', '.join(sorted(SOLVERS))}"
        )
    obs, _ = env.reset(task, seed=seed)
    done: list[str] = []
    reward = 0.0
    for _ in range(max_steps):
        action = policy(read(obs), done)
        done.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return reward, done


def record_reference(env: Any, task: Task, seed: int = 0) -> list[str]:
    """The scripted solution's actions at `seed`, which replay to reward 1 at that seed."""
    reward, done = solve(env, task, seed)
    if reward < 1.0:
        raise EnvError(f"scripted solution for {task.name} scored {reward} at seed {seed}")
    return done
