"""The `lbi` command line: one thin command per stage; the logic lives in the modules below."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from lbi.config import Config, ConfigError, dump_config, load_config

app = typer.Typer(
    help="lbi — let an LLM agent learn a new environment by interacting with it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
models_app = typer.Typer(
    help="Model backends: probe an endpoint before spending.", no_args_is_help=True
)
envs_app = typer.Typer(
    help="Environments: list them, check one against the contract.", no_args_is_help=True
)
runs_app = typer.Typer(help="Runs under the run root: list them, show one.", no_args_is_help=True)
index_app = typer.Typer(help="Retrieval index over a run's dataset.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(envs_app, name="envs")
app.add_typer(runs_app, name="runs")
app.add_typer(index_app, name="index")

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


def _config(
    config: Path | None, sets: list[str] | None, model: str | None = None, env: str | None = None
) -> Config:
    extra = list(sets or [])
    if model:
        extra.append(f"model={model}")
    if env:
        extra.append(f"env={env}")
    return load_config(config, extra)


def _arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- config -----------------------------------------------------------------------------------
@config_app.command("show")
@friendly
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective configuration (defaults + file + --set overrides) as YAML."""
    out.print(dump_config(_config(config, set_)), end="", markup=False, highlight=False)


# -- models -----------------------------------------------------------------------------------
@models_app.command("probe")
@friendly
def models_probe(
    model: Annotated[str, typer.Argument(help="Model spec to probe.")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check an endpoint before any money is spent: answers? JSON schema? real tool calls?"""
    from lbi.models.probe import format_report, probe

    report = _arun(probe(model, _config(config, set_)))
    if not report.answers:
        err.print(f"[red]error:[/] {model}: no answer — {report.error}", highlight=False)
        raise typer.Exit(2)
    out.print(format_report(report), markup=False, highlight=False)


# -- envs -------------------------------------------------------------------------------------
@envs_app.command("list")
@friendly
def envs_list() -> None:
    """List registered environments."""
    from lbi.envs.base import list_envs

    table = Table("environment", "description")
    for name, desc in list_envs().items():
        table.add_row(name, desc)
    out.print(table)


@envs_app.command("check")
@friendly
def envs_check(
    name: Annotated[str, typer.Argument(help="Environment spec, e.g. sql, sql:concert_singer.")],
    url: Annotated[str | None, typer.Option(help="For site/mcp: the URL to check.")] = None,
    docs: Annotated[Path | None, typer.Option(help="For site/mcp: a documentation folder.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate an environment: docs, reproducible reset, bad actions, reference solutions, close."""
    from lbi.envs.base import make_env
    from lbi.envs.check import check_env

    cfg = _config(config, set_)
    prefix = name.split(":")[0].split(".")[0]
    if url or docs:
        opts = dict(cfg.env_options.get(prefix, {}))
        if url:
            opts["url"] = url
        if docs:
            opts["docs_dir"] = str(docs)
        cfg.env_options[prefix] = opts
    report = check_env(lambda: make_env(name, cfg))
    for r in report.results:
        mark = "[green]ok[/]  " if r.ok else "[red]FAIL[/]"
        out.print(f"{mark} {r.name}" + (f"  [dim]{r.detail}[/]" if r.detail else ""))
    out.print(f"{name}: {'passed' if report.ok else 'FAILED'}")
    if not report.ok:
        raise typer.Exit(1)


# -- runs -------------------------------------------------------------------------------------
@runs_app.command("list")
@friendly
def runs_list(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List runs under the run root."""
    from lbi.store import list_runs

    cfg = _config(config, set_)
    for p in list_runs(cfg.run_root):
        out.print(p.name)


@runs_app.command("show")
@friendly
def runs_show(name: str, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Show a run's record counts and spend."""
    from lbi.run import RunContext

    ctx = RunContext(name, _config(config, set_), create=False)
    out.print_json(json.dumps(ctx.info()))
    ctx.store.close()


def main() -> None:
    app(prog_name="lbi")


from lbi import cli_eval, cli_pipeline, cli_train  # noqa: E402, F401  (register their commands)
from lbi.view.command import view as _view  # noqa: E402

app.command("view")(friendly(_view))

if __name__ == "__main__":  # `python -m lbi.cli`: use the module the commands registered on
    from lbi.cli import main as _main

    _main()
