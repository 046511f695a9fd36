"""Pre-flight: an environment's setup fails here, in one line, before any model call is paid.

Every command that pays for model calls (`synth` and its stages, `eval`, `envs check`,
`experiment paper`) first builds its environment, resets it on the first task of each distinct
setup it will run, and closes it; a suite file has already checked its SQL and its `python`
checks when it was loaded (`suite_file.with_suite`). Whatever the user's environment or site
raises becomes one `EnvError` naming the environment, the task's setup and the cause, so the
command exits 2 before its run folder exists. An environment whose `reset` itself asks a model
(`reset_calls_model`, tau2) is only built.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from lbi.envs.base import EnvError, Environment, one_line, reset_calls_model
from lbi.types import Task


def _key(task: Task) -> str:
    return json.dumps(task.setup, sort_keys=True, default=str)


def distinct_setups(tasks: list[Task]) -> list[Task]:
    """The first task of each distinct setup, in order."""
    first: dict[str, Task] = {}
    for task in tasks:
        first.setdefault(_key(task), task)
    return list(first.values())


def _build(make: Callable[[], Environment]) -> Environment:
    try:
        return make()
    except EnvError:
        raise
    except Exception as e:  # make_env already names the spec; a bare factory may not
        raise EnvError(f"the environment could not be made: {one_line(e)}") from e


def _reset(env: Environment, task: Task) -> None:
    try:
        env.reset(task, 0)
    except EnvError:
        raise  # the environment's own message names it and its options
    except Exception as e:
        which = f" on task {task.name}" if task.name else ""
        raise EnvError(
            f"{env.name}: reset{which} with setup {task.setup} failed: {one_line(e)}"
        ) from e


Tasks = list[Task] | Callable[[Environment], list[Task]] | None


def preflight(make: Callable[[], Environment], tasks: Tasks = None) -> int:
    """Build the environment, reset it on the first task of each distinct setup among `tasks`
    (a list, a function of the built environment, or by default its sample tasks), close it;
    return how many resets ran. Raises `EnvError`."""
    env = _build(make)
    failed = True
    try:
        if tasks is None:
            tasks = env.sample_tasks()
        todo = distinct_setups(tasks(env) if callable(tasks) else tasks)
        if reset_calls_model(env):
            todo = []
        for task in todo:
            _reset(env, task)
        failed = False
    finally:
        try:
            env.close()
        except Exception as e:
            if not failed:  # a reset's error says more than the close it left behind
                raise EnvError(f"{env.name}: close failed: {one_line(e)}") from e
    return len(todo)
