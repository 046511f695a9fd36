"""`lbi suite`: benchmark suite files (write one from the environment itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lbi.cli.app import ConfigOpt, DocsOpt, EnvOpt, SetOpt, app, cli_config, friendly, out
from lbi.config import ConfigError

suite_app = typer.Typer(
    help="Benchmark suite files: write one from an environment's own tasks.", no_args_is_help=True
)
app.add_typer(suite_app, name="suite")


def _settings(given: list[str] | None) -> list[dict[str, Any]]:
    """`--make-kwargs task=tidy,level=2` (repeatable) -> [{"task": "tidy", "level": 2}, ...]."""
    import yaml

    out_: list[dict[str, Any]] = []
    for text in given or []:
        pairs = [p.partition("=") for p in text.split(",") if p.strip()]
        if not pairs or any(not eq or not k.strip() for k, eq, _ in pairs):
            raise ConfigError(f"--make-kwargs {text!r}: give key=value[,key=value]")
        out_.append({k.strip(): yaml.safe_load(v) for k, _, v in pairs})
    return out_


@suite_app.command("init")
@friendly
def suite_init(
    env: EnvOpt = None,
    seeds: Annotated[
        str, typer.Option(help="Seeds, one task each: a range and/or a list (0-9, 0,3,7).")
    ] = "0-9",
    make_kwargs: Annotated[
        list[str] | None,
        typer.Option(
            "--make-kwargs",
            help="For gym: constructor arguments of a game that picks its task when it is made, "
            "key=value[,key=value]; repeat it for several (each gets every seed).",
        ),
    ] = None,
    instruction_from: Annotated[
        str | None,
        typer.Option(
            help="The info key holding the task's instruction (default: the first of "
            "task_description, instruction, goal, objective, task the reset returns)."
        ),
    ] = None,
    reference_from: Annotated[
        str | None,
        typer.Option(
            help="The info key holding the reference actions (default: the first of "
            "gold_actions, reference, solution, expert_actions, walkthrough; none: no reference)."
        ),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            help='The success check of every task, as JSON (default: {"info": KEY} for '
            'env_options.gym.success_info, else {"reward": 1.0}).'
        ),
    ] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")] = Path(
        "suite.jsonl"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite the file if it exists.")] = False,
    docs: DocsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a suite file whose tasks read their instruction and reference from the
    environment's `info` after reset (`instruction_from`, `reference_from`)."""
    from lbi.envs.base import make_env
    from lbi.envs.suite_file import Suite
    from lbi.envs.suite_init import parse_seeds, suite_rows

    cfg = cli_config(config, set_, None, env, docs=docs)
    if out_file.exists() and not force:
        raise ConfigError(f"{out_file} exists: choose another --out, or --force to overwrite it")
    try:
        wanted = json.loads(check) if check else None
    except ValueError as e:
        raise ConfigError(f"--check is not JSON: {e}") from None
    environment = make_env(cfg.env, cfg)
    try:
        rows = suite_rows(
            environment,
            parse_seeds(seeds),
            _settings(make_kwargs),
            instruction_from,
            reference_from,
            wanted,
        )
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        suite = Suite(out_file, environment.name, source=environment)  # it loads as written
    finally:
        environment.close()
    longest = max(len(t.reference) for t in suite.tasks)
    out.print(
        f"wrote {len(rows)} tasks to {out_file} (instruction from info[{rows[0]['instruction_from']!r}]"
        + (
            f", reference from info[{rows[0]['reference_from']!r}], up to {longest} steps"
            if "reference_from" in rows[0]
            else ", no reference"
        )
        + f"); check them: lbi envs check {cfg.env} --suite {out_file}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
