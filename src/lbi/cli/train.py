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
    run: Annotated[str, typer.Argument(help="Run whose kept examples to train on.")],
    base: Annotated[
        str | None, typer.Option(help="local | an HF model folder | a .gguf file (train.base).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: runs/RUN/train).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """LoRA fine-tuning (TRL SFTTrainer + PEFT) on the run's kept examples, as the agent sees them.

    Writes the adapter, a merged model and a GGUF the embedded runtime serves:
    evaluate it with `lbi eval --model local:runs/RUN/train/model.f16.gguf`.
    """
    from lbi.pipeline.export import example_to_chats
    from lbi.pipeline.synth import action_space, kept_examples

    ctx = existing_run(run, config, set_)
    opts = ctx.config.train.model_copy(update={"base": base} if base else {})
    space = action_space(ctx)
    chats = [c for ex in kept_examples(ctx) for c in example_to_chats(ex, space, bool(space.tools))]
    ctx.store.close()
    if not chats:
        raise ConfigError(
            f"run {run!r} has no kept examples to train on; run `lbi synth --run {run}` first"
        )
    target = out_dir or ctx.dir / "train"
    out.print(f"training {opts.base} on {len(chats)} chat samples from run {run} -> {target}")
    try:
        from lbi.train.sft import train as fit

        result = fit(chats, opts.base, target, opts)
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
