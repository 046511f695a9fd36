"""`miniwob`: the 125 MiniWoB++ tasks, driven through BrowserGym's task objects.

Each episode builds BrowserGym's own MiniWoB task object, calls its `setup(page)` on a fresh
context of our shared browser and its `validate(page, ...)` after each action: the reward is
the task's own. That episode plumbing is shared with every BrowserGym family (bgym.py).

`--env miniwob` spans every task (a task's `setup["task"]` names it); `miniwob.NAME` narrows
the environment (docs, suites, sample tasks) to one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, register_env
from lbi.envs.web import actions
from lbi.envs.web.bgym import BrowserGymTaskEnv
from lbi.envs.web.miniwob_docs import miniwob_docs
from lbi.envs.web.session import SESSION_OPTIONS, PageSession, session_options
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
OPTIONS = SESSION_OPTIONS
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


class MiniwobEnv(BrowserGymTaskEnv):
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
        super().__init__(
            PageSession(
                actions.MINIWOB_SUBSETS,
                max_chars=max_chars,
                screenshot=screenshot,
                visible_only=visible_only,
            )
        )

    def docs(self) -> list[Doc]:
        names = [self.only] if self.only else list(task_classes())
        descs = {n: task_classes()[n].desc for n in names}
        return miniwob_docs(self.name, descs, self.action_space())

    def action_space(self) -> ActionSpace:
        return actions.action_space(actions.MINIWOB_SUBSETS, EXAMPLES)

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        name = task.setup.get("task") or self.only
        if name not in task_classes():
            raise EnvError(
                f"task {task.name or task.id} names no MiniWoB task (setup['task']={name!r})"
            )
        seed = int(task.setup.get("seed", 0) if seed is None else seed)
        obs = self.start(name, seed)
        return obs, {"task": name, "seed": seed, "goal": self.session.goal}

    def make_task(self, name: str, seed: int) -> Any:
        return task_classes()[name](seed=seed, base_url=self.url)

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
    return MiniwobEnv(only=arg, **session_options(opts))
