"""Training commands: fine-tune on a run's kept examples; export the untrained base the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbi.cli.app import ConfigOpt, SetOpt, app, friendly, out
from lbi.config import ConfigError
from lbi.run import existing_run


def _train_errors() -> type[Exception]:
    from lbi.train.options import TrainError

    return TrainError


@app.command()
@friendly
def train(
    run: Annotated[
        str | None,
        typer.Argument(help="Run whose kept examples to train on (optional with --chats)."),
    ] = None,
    chats: Annotated[
        list[Path] | None,
        typer.Option(
            "--chats", help="OpenAI-chat JSONL to train on too (gold, outside data); repeatable."
        ),
    ] = None,
    from_run: Annotated[
        list[str] | None,
        typer.Option("--from-run", help="Another run's kept examples; repeatable."),
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="local | an HF model folder | a .gguf file (train.base).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: runs/RUN/train).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """LoRA fine-tuning (TRL SFTTrainer + PEFT) on kept examples, as the agent sees them, and/or
    on chat files.

    Writes the adapter, a merged model and a GGUF the embedded runtime serves:
    evaluate it with `lbi eval --model local:runs/RUN/train/model.f16.gguf`.
    """
    from lbi.cli.app import cli_config
    from lbi.train.sources import chats_from_files, chats_from_run

    if not run and not chats and not from_run:
        raise ConfigError("name a run, --from-run RUN or --chats FILE to train on")
    if not run and out_dir is None:
        raise ConfigError("without a run, say where to write with --out DIR")
    samples: list[dict] = []
    cfg, run_dir = cli_config(config, set_), None
    for name in [*([run] if run else []), *(from_run or [])]:
        ctx = existing_run(name, config, set_)
        samples += chats_from_run(ctx)
        if name == run:  # the named run's config and folder; --from-run only lends data
            cfg, run_dir = ctx.config, ctx.dir
        ctx.store.close()
    try:
        samples += chats_from_files(chats or [])
    except _train_errors() as e:
        raise ConfigError(str(e)) from None
    opts = cfg.train.model_copy(update={"base": base} if base else {})
    if not samples:
        raise ConfigError(
            f"nothing to train on: no kept examples in {run or from_run} and no --chats rows; "
            "run `lbi synth` first"
        )
    chats_ = samples
    target = out_dir or (run_dir / "train" if run_dir else Path("train"))
    out.print(f"training {opts.base} on {len(chats_)} chat samples -> {target}")
    try:
        from lbi.train.sft import train as fit

        result = fit(chats_, opts.base, target, opts)
    except _train_errors() as e:
        raise ConfigError(f"training failed: {e}") from None
    out.print(
        f"held-out loss {result.eval_loss_before} -> {result.eval_loss_after}; "
        f"{result.train_tokens} tokens at {result.tokens_per_s:.0f} tokens/s"
    )
    out.print(
        f"adapter: {result.adapter_dir}\nmerged: {result.merged_dir}\ngguf: {result.gguf_path}"
    )


@app.command("export-base")
@friendly
def export_base_(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
    base: Annotated[str, typer.Option(help="local | an HF model folder | a .gguf file.")] = "local",
    gguf: Annotated[
        str, typer.Option(help="GGUF precision: f16 | f32 | bf16 | q8_0 | none.")
    ] = "f16",
) -> None:
    """Export an untrained base at the precision of trained exports (for a fair before/after)."""
    from lbi.train.export import export_base

    try:
        folder, path = export_base(base, out_dir, gguf)
    except _train_errors() as e:
        raise ConfigError(f"export failed: {e}") from None
    out.print(f"model folder: {folder}\ngguf: {path}")
