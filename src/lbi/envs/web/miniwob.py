"""`miniwob`: the 125 MiniWoB++ tasks, driven through BrowserGym's task objects.

We do not use BrowserGym's `BrowserEnv`: it launches a second browser for a chat window
(ignoring `executable_path`, so it fails with Debian's Chromium), relaunches Chromium every
reset, and takes a DOM snapshot, a screenshot and a 0.5 s nap every step. Instead each episode
builds BrowserGym's own MiniWoB task object, calls its `setup(page)` on a fresh context of our
shared browser and its `validate(page, ...)` after each action: the reward is the task's own.

`--env miniwob` spans every task (a task's `setup["task"]` names it); `miniwob.NAME` narrows
the environment (docs, suites, sample tasks) to one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.web import actions
from lbi.envs.web.docs import miniwob_docs
from lbi.envs.web.session import PageSession
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

# Ten families a scripted solution solves at every seed (tests/test_web_miniwob.py): a quick,
# reliable smoke suite whose failures mean the agent, not the environment.
QUICK = [
    "click-button",
    "click-button-sequence",
    "click-dialog",
    "click-tab",
    "click-checkboxes",
    "click-option",
    "choose-list",
    "enter-text",
    "enter-password",
    "login-user",
]
OPTIONS = {"max_chars", "screenshot", "visible_only"}
EXAMPLES = ["click('12')", "fill('5', 'hello')", "select_option('7', 'Blue')"]


def miniwob_url() -> str:
    """`MINIWOB_URL`, or the `html/miniwob/` folder of the `miniwob` package as a file:// URL."""
    if url := os.environ.get("MINIWOB_URL"):
        return url if url.endswith("/") else url + "/"
    try:
        import miniwob
    except ImportError:
        raise EnvError(
            "miniwob needs the `miniwob` package: pip install miniwob browsergym-miniwob"
        ) from None
    return (Path(miniwob.__file__).parent / "html" / "miniwob").as_uri() + "/"


@cache
def task_classes() -> dict[str, Any]:
    """subdomain -> BrowserGym task class, for all 125 tasks."""
    try:
        from browsergym.miniwob import ALL_MINIWOB_TASKS
    except ImportError:
        raise EnvError("miniwob needs browsergym-miniwob: pip install browsergym-miniwob") from None
    return {cls.subdomain: cls for cls in ALL_MINIWOB_TASKS}


def benchmark_task(name: str) -> Task:
    cls = task_classes()[name]
    return Task(
        env="miniwob",
        name=name,
        instruction=f"MiniWoB {name}: {cls.desc} The exact goal is on the page.",
        setup={"task": name},
        origin="benchmark",
        gold={"reward": 1.0},
    )


class MiniwobEnv:
    name = "miniwob"
    max_concurrency = 4  # episodes share one browser; each call is short
    seeds_vary = True  # a seed draws the task's utterance and page

    def __init__(
        self,
        only: str = "",
        max_chars: int = 6000,
        screenshot: bool = False,
        visible_only: bool = False,
    ) -> None:
        if only and only not in task_classes():
            raise EnvError(
                f"unknown MiniWoB task {only!r}; see `lbi envs list` or docs/environments/web.md"
            )
        self.only = only
        self.url = miniwob_url()
        self.session = PageSession(
            actions.MINIWOB_SUBSETS,
            max_chars=max_chars,
            screenshot=screenshot,
            visible_only=visible_only,
        )
        self.task: Any = None  # the BrowserGym task object of the running episode
        self.done = False

    def docs(self) -> list[Doc]:
        return miniwob_docs(
            self.name, [self.only] if self.only else list(task_classes()), self.action_space()
        )

    def action_space(self) -> ActionSpace:
        return actions.action_space(actions.MINIWOB_SUBSETS, EXAMPLES)

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        name = task.setup.get("task") or self.only
        if name not in task_classes():
            raise EnvError(
                f"task {task.name or task.id} names no MiniWoB task (setup['task']={name!r})"
            )
        seed = int(task.setup.get("seed", 0) if seed is None else seed)
        self.task = task_classes()[name](seed=seed, base_url=self.url)
        page = self.session.open(viewport=self.task.viewport)
        goal, _ = self.session.run(lambda: self.task.setup(page))
        self.session.goal = str(goal)
        self.done = False
        return self.session.observe(), {"task": name, "seed": seed, "goal": self.session.goal}

    def step(self, action: str) -> StepResult:
        if self.task is None:
            return "Error: call reset() before step().", 0.0, False, False, {"error": True}
        error = self.session.act(action)
        reward, done, _, info = self.session.run(lambda: self.task.validate(self.session.page, []))
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

    def suites(self) -> list[str]:
        return ["miniwob-all", "miniwob-quick"]

    def load_suite(self, name: str) -> list[Task]:
        if name == "miniwob-all":
            names = list(task_classes())
        elif name == "miniwob-quick":
            names = QUICK
        else:
            raise EnvError(f"unknown suite {name!r} for miniwob; known: {', '.join(self.suites())}")
        return [benchmark_task(n) for n in names if not self.only or n == self.only]

    def oracle(self, task: Task) -> Callable[[str, list[str]], str] | None:
        """The scripted solution of the task's family as a policy over observation text and the
        actions done so far (`lbi.agents.gold.GoldPolicy`); None for a family without one."""
        from lbi.envs.web.solutions import SOLVERS, read

        solver = SOLVERS.get(str(task.setup.get("task") or task.name))
        if solver is None:
            return None
        return lambda observation, done: solver(read(observation), list(done))

    def sample_tasks(self) -> list[Task]:
        """Two tasks with references recorded by the scripted solver at seed 0 (for `envs check`)."""
        from lbi.envs.web.solutions import SOLVERS, record_reference

        names = [self.only] if self.only else QUICK[:2]
        out = []
        for n in names:
            t = benchmark_task(n)
            if n in SOLVERS:
                t = t.model_copy(update={"reference": record_reference(self, t, seed=0)})
            out.append(t)
        return out


@register_env(
    "miniwob",
    "MiniWoB++ (125 tasks) via BrowserGym's tasks on Debian Chromium; miniwob.NAME for one",
)
def _factory(arg: str, config: Config) -> MiniwobEnv:
    opts = dict(config.env_options.get("miniwob", {}))
    unknown = set(opts) - OPTIONS
    if unknown:
        raise EnvError(
            f"unknown miniwob option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTIONS))}"
        )
    return MiniwobEnv(
        only=arg,
        max_chars=int(opts.get("max_chars", 6000)),
        screenshot=bool(opts.get("screenshot", False)),
        visible_only=bool(opts.get("visible_only", False)),
    )
