"""An episode of any BrowserGym task class, on a fresh context of our shared Chromium.

What a BrowserGym benchmark family (MiniWoB today, WebArena next) needs from lbi is the same:
build the benchmark's own task object, call its `setup(page)` for the goal, act through the
shared `PageSession` (BrowserGym's action set, AXTree observation), and call its
`validate(page, chat_messages)` after each action, so the reward is the benchmark's own. A
family subclasses `BrowserGymTaskEnv` and says which task class a task names and how to
build it; docs, suites and options stay with the family.

We do not use BrowserGym's `BrowserEnv`: it launches a second browser for a chat window
(ignoring `executable_path`, so it fails with Debian's Chromium), relaunches Chromium every
reset, and takes a DOM snapshot, a screenshot and a 0.5 s nap every step.
"""

from __future__ import annotations

from typing import Any

from lbi.envs.base import StepResult
from lbi.envs.web.session import PageSession


class BrowserGymTaskEnv:
    """Episode plumbing shared by the BrowserGym families; not an environment by itself."""

    def __init__(self, session: PageSession) -> None:
        self.session = session
        self.task: Any = None  # the BrowserGym task object of the running episode
        self.done = False

    def make_task(self, name: str, seed: int) -> Any:
        """The family's BrowserGym task object for task `name` at `seed`."""
        raise NotImplementedError

    def start(self, name: str, seed: int) -> str:
        """Build the task, open a fresh page at its viewport, run its setup; the first observation."""
        self.task = self.make_task(name, seed)
        page = self.session.open(viewport=self.task.viewport)
        goal, _ = self.session.run(lambda: self.task.setup(page))
        self.session.goal = str(goal)
        self.done = False
        return self.session.observe()

    def chat_messages(self) -> list[dict[str, str]]:
        """The chat as BrowserGym's `validate` reads it: the goal, then what the agent sent with
        `send_msg_to_user` (answer-checking benchmarks read the last assistant message)."""
        said = [{"role": "assistant", "message": m} for m in self.session.messages]
        return [{"role": "user", "message": self.session.goal}, *said]

    def step(self, action: str) -> StepResult:
        if self.task is None:
            return "Error: call reset() before step().", 0.0, False, False, {"error": True}
        error = self.session.act(action)
        chat = self.chat_messages()
        reward, done, _, info = self.session.run(
            lambda: self.task.validate(self.session.page, chat)
        )
        self.done = bool(done)
        obs = self.session.observe()
        out: dict[str, Any] = {"error": bool(error), "task_info": info}
        if self.session.view and self.session.view.screenshot_png_b64:
            out["screenshot_png_b64"] = self.session.view.screenshot_png_b64
        return obs, float(reward), self.done, False, out

    def state_digest(self) -> str:
        return self.session.digest(extra=str(self.done))

    def close(self) -> None:
        self.session.close_context()
        self.task = None
