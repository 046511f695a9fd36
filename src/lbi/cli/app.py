"""The Typer app, its shared options, error handling and config loading.

This module imports no command module: each command group (`lbi.cli.<group>`) imports this one
and registers its commands on `app` (or on its own sub-app added here by the group).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lbi.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from lbi.run import RunContext

app = typer.Typer(
    help="lbi — let an LLM agent learn a new environment by interacting with it.",
    epilog="Every setting, its default and its --set key: `lbi config show`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # typer's rich panels print `<bool>` after every flag (--help too)
)


def plain_help() -> None:
    """The same plain help for every command group (called once all groups are added)."""
    for group in app.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None


def _version(value: bool) -> None:
    if value:
        from lbi import __version__

        print(f"lbi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print the version."),
    ] = False,
) -> None:
    """lbi — let an LLM agent learn a new environment by interacting with it."""


out = Console()
err = Console(stderr=True)

_DEFAULTS = Config()
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file (default: none).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a setting: a.b=value (repeatable); `lbi config show` lists every key "
        "with its default.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="local | local:PATH.gguf | scripted | openai:MODEL | hf:PATH "
        f"(default: the config's `model`, {_DEFAULTS.model}).",
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment, e.g. sql, sql:concert_singer, toy "
        f"(default: the config's `env`, {_DEFAULTS.env}).",
    ),
]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", "-r", help="Run name (default: derived from env, model and config)."),
]

UrlOpt = Annotated[
    str | None,
    typer.Option(
        help="For site and mcp: the running site's or server's URL (sets env_options.<env>.url; "
        "default: none)."
    ),
]
DocsOpt = Annotated[
    str | None,
    typer.Option(
        help="For site, mcp and gym: the documentation, a folder, a file or MODULE:ATTR (a "
        "string or list of strings in Python) (sets env_options.<env>.docs_dir; default: none)."
    ),
]

LimitOpt = Annotated[
    int | None,
    typer.Option(
        min=1, help="Only the first N tasks (deterministic), for a quick run (default: all)."
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print the most model calls, tokens and $ (from `prices:`) it would spend; "
        "run nothing, store nothing.",
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Episodes and calls at once (sets door.concurrency; default {Config().door.concurrency}).",
    ),
]

T = TypeVar("T")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from lbi.embed.base import EmbedError
    from lbi.envs.base import EnvError
    from lbi.models.base import ModelError
    from lbi.run import RunError
    from lbi.store import StoreError

    return (
        StoreError,
        ConfigError,
        ModelError,
        EnvError,
        RunError,
        EmbedError,
        FileNotFoundError,
        PermissionError,
    )


def friendly(fn: Callable[..., T]) -> Callable[..., T]:
    """Known failures become one readable line and exit code 2 (a full disk and a SQLite file
    locked by another process too); a budget stop exits 3; a stage with more failed units than
    `run.max_failures` allows exits 4."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from lbi.models.base import BudgetExceeded
        from lbi.pipeline.failures import TooManyFailures

        try:
            return fn(*args, **kwargs)
        except BudgetExceeded as e:
            err.print(
                f"[yellow]stopped:[/] {e}. Raise the cap (--set budget.max_tokens=... or "
                "budget.max_cost_usd=...) and rerun the same command to resume.",
                soft_wrap=True,
            )
            raise typer.Exit(3) from None
        except TooManyFailures as e:
            err.print(f"[red]stopped:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
            raise typer.Exit(4) from None
        except _expected_errors() as e:
            err.print(f"[red]error:[/] {e}", soft_wrap=True)
            raise typer.Exit(2) from None
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):
                from lbi.store import write_problem

                why = write_problem(e)
                if why is None:
                    raise
                # The run store names itself (StoreError); another SQLite file lands here.
                err.print(f"[red]error:[/] a SQLite file {escape(why)} ({e})", soft_wrap=True)
                raise typer.Exit(2) from None
            # Damage past the pages read when the store opened shows only when it is read.
            err.print(f"[red]error:[/] a SQLite file is damaged ({e}); `lbi runs list` marks runs")
            raise typer.Exit(2) from None
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {escape(str(e.filename))}" if e.filename else ""
            err.print(
                f"[red]error:[/] no space left on the disk{where}: free some space and rerun "
                "the same command to resume (finished work is kept)",
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            from lbi.models.workers import exit_abandoning_calls

            err.print("interrupted: rerun the same command to resume.")
            # The run's stores are closed by now; a llama.cpp call still computing is dropped.
            exit_abandoning_calls(130)
            raise typer.Exit(130) from None

    return wrapper


def cli_config(
    config: Path | None,
    sets: list[str] | None,
    model: str | None = None,
    env: str | None = None,
    url: str | None = None,
    docs: str | Path | None = None,
) -> Config:
    extra = list(sets or [])
    if model:
        extra.append(f"model={model}")
    if env:
        extra.append(f"env={env}")
    cfg = load_config(config, extra)
    if url or docs:  # --url/--docs: the env's own settings, for whichever env is chosen
        return with_env_source(cfg, cfg.env, url, docs)
    return cfg


def with_env_source(cfg: Config, spec: str, url: str | None, docs: str | Path | None) -> Config:
    """`cfg` with env_options.<family of spec>.url / docs_dir set."""
    family = spec.split(":")[0].split(".")[0]
    opts = dict(cfg.env_options.get(family, {}))
    if url:
        opts["url"] = url
    if docs:
        opts["docs_dir"] = str(docs)
    return cfg.model_copy(update={"env_options": {**cfg.env_options, family: opts}})


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def start_run(cfg: Config, run: str | None) -> RunContext:
    """Open (or create) the run a command writes to, and say which it is."""
    from lbi.run import open_run

    ctx = open_run(cfg, run)
    err.print(f"run: [bold]{ctx.name}[/]  ({ctx.dir})")
    return ctx
