"""Suite tasks read from the environment (`instruction_from`, `reference_from`), and
`lbi suite init`, which writes a suite file from the environment itself.

An environment that knows its tasks says so in the `info` its `reset` returns (ALFWorld-style
games: `task_description`, `gold_actions`). For each constructor setting (`make_kwargs`) and
seed, the environment is reset once and a task line is written that reads its instruction and
reference from those keys (`instruction_from`, `reference_from`, see suite_file.py): the file
names where they are, not copies of them, so it stays short and follows the environment.
"""

from __future__ import annotations

from typing import Any

from lbi.envs.base import EnvError, Environment, one_line
from lbi.types import Task

INSTRUCTION_KEYS = ("task_description", "instruction", "goal", "objective", "task")
REFERENCE_KEYS = ("gold_actions", "reference", "solution", "expert_actions", "walkthrough")


def parse_seeds(text: str) -> list[int]:
    """`0-9`, `0,3,7` or `0-4,9`: the seeds, in order, each once."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            first, dash, last = part.partition("-")
            seeds += range(int(first), int(last) + 1) if dash else [int(first)]
    except ValueError:
        raise EnvError(f"--seeds {text!r}: give a range and/or a list, e.g. 0-9 or 0,3,7") from None
    if not seeds:
        raise EnvError(f"--seeds {text!r} names no seed")
    return list(dict.fromkeys(seeds))


def info_after_reset(env: Environment, setup: dict[str, Any], where: str) -> dict[str, Any]:
    """The `info` of a reset on this setup (at its `seed`, else 0); any error is one line."""
    setup = {k: v for k, v in setup.items() if k != "db_fixture"}
    probe = Task(env=env.name, instruction="(read from the environment)", setup=setup)
    try:
        _, info = env.reset(probe, int(setup.get("seed", 0)))
    except EnvError as e:
        raise EnvError(f"{where}: {e}") from e
    except Exception as e:
        raise EnvError(f"{where}: reset with setup {setup} failed: {one_line(e)}") from e
    return dict(info or {})


def info_value(info: dict[str, Any], key: str, where: str) -> Any:
    if info.get(key) in (None, "", []):
        raise EnvError(f"{where}: the reset's info has no {key!r} (it has {_keys(info)})")
    return info[key]


def as_actions(value: Any) -> list[str]:
    """A reference from `info`: a list of actions, or a string of one action per line."""
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    return [str(a) for a in value]


def _key(info: dict[str, Any], asked: str | None, known: tuple[str, ...], what: str) -> str | None:
    if asked:
        if asked not in info:
            raise EnvError(
                f"the reset's info has no {asked!r} for the {what} (it has {_keys(info)})"
            )
        return asked
    return next((k for k in known if info.get(k) not in (None, "", [])), None)


def _keys(info: dict[str, Any]) -> str:
    return ", ".join(map(str, info)) or "nothing"


def default_check(env: Environment) -> dict[str, Any]:
    """`{"info": KEY}` when the environment's options name a success key, else its return."""
    success = getattr(getattr(env, "options", None), "success_info", None)
    return {"info": success} if success else {"reward": 1.0}


def suite_rows(
    env: Environment,
    seeds: list[int],
    settings: list[dict[str, Any]],
    instruction_from: str | None = None,
    reference_from: str | None = None,
    check: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One task line per constructor setting (none: `[{}]`) and seed."""
    rows = []
    for kwargs in settings or [{}]:
        for seed in seeds:
            setup: dict[str, Any] = {"seed": seed, **({"make_kwargs": kwargs} if kwargs else {})}
            info = info_after_reset(env, setup, env.name)
            ins = _key(info, instruction_from, INSTRUCTION_KEYS, "instruction")
            if ins is None:
                raise EnvError(
                    f"{env.name}: no instruction in the reset's info (it has {_keys(info)}): "
                    "name the key with --instruction-from KEY"
                )
            ref = _key(info, reference_from, REFERENCE_KEYS, "reference")
            label = "-".join([*(str(v) for v in kwargs.values()), str(seed)])
            row: dict[str, Any] = {"name": label if kwargs else f"seed-{seed}"}
            row["instruction_from"] = ins
            if ref:
                row["reference_from"] = ref
            rows.append({**row, "setup": setup, "check": check or default_check(env)})
    return rows
