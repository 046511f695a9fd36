"""`lbi repo`: the repository environment's tools (building a bug suite from your repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, cli_config, friendly, out

repo_app = typer.Typer(
    help="The repo environment: build a SWE-style bug suite from a repository.",
    no_args_is_help=True,
)
app.add_typer(repo_app, name="repo")


@repo_app.command("bugs")
@friendly
def repo_bugs(
    path: Annotated[Path, typer.Option(help="The repository: a git repository or a folder.")],
    test_cmd: Annotated[
        str, typer.Option("--test-cmd", help="Runs the whole test suite under pytest.")
    ] = "python -m pytest -q",
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="JSON lines to write (default: RUN_ROOT/repo-bugs/NAME.jsonl, where the "
            "repo-bugs-local suite looks for it).",
        ),
    ] = None,
    count: Annotated[int, typer.Option(help="Instances to keep at most.")] = 11,
    tries: Annotated[int, typer.Option(help="Mutations to try at most.")] = 60,
    seed: Annotated[int, typer.Option(help="Same seed and repository: same instances.")] = 0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Mutate function bodies, run the tests in the sandbox, keep real bugs (FAIL_TO_PASS with
    every other test passing), and write them as a suite for `lbi eval --suite repo-bugs-local`."""
    from lbi.config import ConfigError
    from lbi.envs.repo.bugs import build_suite

    if not path.is_dir():
        raise ConfigError(f"--path {path} is not a folder")
    cfg = cli_config(config, set_)
    name = str(cfg.env_options.get("repo", {}).get("name") or path.resolve().name)
    dest = out_file or Path(cfg.run_root) / "repo-bugs" / f"{name}.jsonl"
    rows = build_suite(
        dest, Path(cfg.run_root), str(path), None, test_cmd, count, tries, seed, name
    )
    out.print(f"{len(rows)} instances written to {dest}", highlight=False)
    if not rows:
        raise typer.Exit(1)
    out.print(
        f"evaluate: lbi eval --env repo --suite repo-bugs-local "
        f"--set env_options.repo.path={path} --set 'env_options.repo.test_cmd={test_cmd}'"
        + (f" --set env_options.repo.bugs_file={dest}" if out_file else ""),
        highlight=False,
    )
