"""The Typer app, its shared options, error handling and config loading.

This module imports no command module: each command group (`lbi.cli.<group>`) imports this one
and registers its commands on `app` (or on its own sub-app added here by the group).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from lbi.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from lbi.run import RunContext

app = typer.Typer(
    help="lbi — let an LLM agent learn a new environment by interacting with it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override: a.b=value (repeatable).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="local | local:PATH.gguf | scripted | openai:MODEL | hf:PATH"
    ),
]
EnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", help="Environment, e.g. sql, sql:concert_singer, toy.")
]
UrlOpt = Annotated[
    str | None,
    typer.Option(help="For site/mcp: the running site's or server's URL (env_options.ENV.url)."),
]
DocsOpt = Annotated[
    Path | None,
    typer.Option(help="A documentation folder for the environment (env_options.ENV.docs_dir)."),
]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", "-r", help="Run name (default: derived from env, model and config)."),
]

T = TypeVar("T")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from lbi.embed.base import EmbedError
    from lbi.envs.base import EnvError
    from lbi.models.base import ModelError
    from lbi.run import RunError

    return (
        ConfigError,
        ModelError,
        EnvError,
        RunError,
        EmbedError,
        FileNotFoundError,
        PermissionError,
    )


def friendly(fn: Callable[..., T]) -> Callable[..., T]:
    """Known failures become one readable line and exit code 2; a budget stop exits 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from lbi.models.base import BudgetExceeded

        try:
            return fn(*args, **kwargs)
        except BudgetExceeded as e:
            err.print(
                f"[yellow]stopped:[/] {e}. Raise the cap (--set budget.max_tokens=... or "
                "budget.max_cost_usd=...) and rerun the same command to resume."
            )
            raise typer.Exit(3) from None
        except _expected_errors() as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted: rerun the same command to resume.")
            raise typer.Exit(130) from None

    return wrapper


def cli_config(
    config: Path | None,
    sets: list[str] | None,
    model: str | None = None,
    env: str | None = None,
    url: str | None = None,
    docs: Path | None = None,
) -> Config:
    extra = list(sets or [])
    if model:
        extra.append(f"model={model}")
    if env:
        extra.append(f"env={env}")
    cfg = load_config(config, extra)
    if url or docs:  # the settings they stand for: env_options.<env family>.url / docs_dir
        prefix = cfg.env.split(":")[0].split(".")[0]
        opts = dict(cfg.env_options.get(prefix, {}))
        opts.update({"url": url} if url else {})
        opts.update({"docs_dir": str(docs)} if docs else {})
        cfg.env_options[prefix] = opts
    return cfg


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def start_run(cfg: Config, run: str | None) -> RunContext:
    """Open (or create) the run a command writes to, and say which it is."""
    from lbi.run import open_run

    ctx = open_run(cfg, run)
    err.print(f"run: [bold]{ctx.name}[/]  ({ctx.dir})")
    return ctx
