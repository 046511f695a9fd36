"""Supervised fine-tuning with LoRA: TRL's `SFTTrainer` on labels we build and check ourselves.

`train(examples, base, out_dir, options)` writes, under out_dir:
  checkpoints/   trainer checkpoints (a rerun with the same out_dir resumes from the last one)
  adapter/       the LoRA adapter + tokenizer (`hf:out_dir/adapter` serves it on its base)
  merged/        base + adapter folded into plain safetensors (`hf:out_dir/merged`)
  model.F.gguf   the merged model as GGUF (`local:out_dir/model.F.gguf`, llama.cpp)
  train_result.json
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from lbi.config import TrainConfig
from lbi.models.hf import Loaded
from lbi.train.base import context_limit, load_base
from lbi.train.data import Tokenized, build, split_holdout
from lbi.train.export import merge_adapter, point_adapter_at, to_gguf
from lbi.train.options import TrainError, TrainResult


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _progress_callback() -> Any:
    """One line per logging step: loss, train tokens/s since this session started, and ETA."""
    from rich.console import Console
    from transformers import TrainerCallback

    class Progress(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.console = Console(stderr=True)
            self.t0 = time.perf_counter()
            self.tokens0 = 0
            self.step0 = 0
            self.tokens_per_s = 0.0
            self.seconds = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0, self.tokens0, self.step0 = (
                time.perf_counter(),
                state.num_input_tokens_seen,
                state.global_step,
            )

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seconds = time.perf_counter() - self.t0
            done = state.num_input_tokens_seen - self.tokens0
            self.tokens_per_s = done / self.seconds if self.seconds > 0 else 0.0

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            steps = state.global_step - self.step0
            left = state.max_steps - state.global_step
            eta = self.seconds / steps * left if steps else 0.0
            shown = " · ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if "loss" in k)
            self.console.print(
                f"[train] step {state.global_step}/{state.max_steps} · {shown} · "
                f"{self.tokens_per_s:.0f} tok/s · ETA {_fmt_s(eta)}",
                highlight=False,
            )

    return Progress()


def _dataset(rows: list[Tokenized]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"input_ids": r.input_ids, "labels": r.labels} for r in rows])


def _sft_config(
    opts: TrainConfig, out: Path, loaded: Loaded, max_length: int, progress: bool
) -> Any:
    import torch
    from trl import SFTConfig

    world = max(1, torch.cuda.device_count()) if loaded.device == "cuda" else 1
    accum = max(1, math.ceil(opts.batch_size / (opts.micro_batch_size * world)))
    every = {"eval": opts.eval_steps, "save": opts.save_steps}
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        learning_rate=opts.lr,
        warmup_steps=opts.warmup_ratio,  # a float below 1 is a ratio of the total steps
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps if opts.max_steps is not None else -1,
        per_device_train_batch_size=opts.micro_batch_size,
        per_device_eval_batch_size=opts.micro_batch_size,
        gradient_accumulation_steps=accum,
        lr_scheduler_type=opts.lr_scheduler,
        weight_decay=opts.weight_decay,
        max_length=max_length,
        eval_strategy="steps" if every["eval"] else "epoch",
        eval_steps=every["eval"],
        save_strategy="steps" if every["save"] else "epoch",
        save_steps=every["save"] or 500,
        save_total_limit=opts.save_total_limit,
        logging_steps=opts.logging_steps,
        include_num_input_tokens_seen="non_padding",
        gradient_checkpointing=opts.gradient_checkpointing,
        bf16=loaded.device == "cuda" and loaded.model.dtype == torch.bfloat16,
        use_cpu=loaded.device == "cpu",
        seed=opts.seed,
        report_to="none",
        disable_tqdm=not progress,
    )


def train(
    examples: list[dict[str, Any]],
    base: str | Loaded,
    out_dir: str | Path,
    options: TrainConfig | None = None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `base` (a spec for `load_base`, or an already loaded model) on OpenAI-chat examples."""
    import torch

    opts = options or TrainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    try:
        return _train(examples, base, out, opts, progress)
    finally:
        torch.set_num_threads(threads)


def _train(
    examples: list[dict[str, Any]], base: str | Loaded, out: Path, opts: TrainConfig, progress: bool
) -> TrainResult:
    from peft import LoraConfig
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    loaded = base if isinstance(base, Loaded) else load_base(base, opts.device)
    max_length = min(opts.max_length, context_limit(loaded) or opts.max_length)
    rows, stats = build(loaded.tokenizer, examples, max_length, opts.tool_calls)
    train_rows, eval_rows = split_holdout(rows, opts.eval_fraction, opts.eval_max, opts.seed)
    if not train_rows:
        raise TrainError(
            f"no training examples left after holding out {len(eval_rows)} for validation"
        )
    lora = LoraConfig(
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules=opts.lora_targets,
        task_type="CAUSAL_LM",
    )
    callback = _progress_callback()
    args = _sft_config(opts, out, loaded, max_length, progress)
    if not eval_rows:
        args.eval_strategy = "no"
    trainer = SFTTrainer(
        model=loaded.model,
        args=args,
        train_dataset=_dataset(train_rows),
        eval_dataset=_dataset(eval_rows) if eval_rows else None,
        processing_class=loaded.tokenizer,
        peft_config=lora,
        callbacks=[callback],
    )
    ckpt_dir = Path(args.output_dir)
    last = get_last_checkpoint(str(ckpt_dir)) if opts.resume and ckpt_dir.is_dir() else None
    before = trainer.evaluate()["eval_loss"] if eval_rows and opts.eval_before else None
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=last)
    train_s = time.perf_counter() - started
    after = trainer.evaluate()["eval_loss"] if eval_rows else None

    adapter_dir = out / "adapter"
    peft_model: Any = trainer.model
    peft_model.save_pretrained(str(adapter_dir), save_embedding_layers=False)
    loaded.tokenizer.save_pretrained(str(adapter_dir))
    point_adapter_at(adapter_dir, Path(loaded.source))
    result = TrainResult(
        out_dir=str(out),
        base=loaded.source,
        adapter_dir=str(adapter_dir),
        n_train=len(train_rows),
        n_eval=len(eval_rows),
        n_dropped=stats.n_dropped,
        train_tokens=int(trainer.state.num_input_tokens_seen - callback.tokens0),
        target_tokens=sum(r.n_targets for r in train_rows),
        steps=int(trainer.state.global_step),
        train_loss=float(output.training_loss),
        eval_loss_before=before,
        eval_loss_after=after,
        train_s=train_s,
        tokens_per_s=callback.tokens_per_s,
        resumed_from=last,
        device=loaded.device,
        options=opts,
    )
    if opts.merge or opts.gguf != "none":
        merged = merge_adapter(peft_model, loaded.tokenizer, out / "merged")
        result.merged_dir = str(merged)
        if opts.gguf != "none":
            result.gguf_path = str(to_gguf(merged, out / f"model.{opts.gguf}.gguf", opts.gguf))
    (out / "train_result.json").write_text(result.model_dump_json(indent=2))
    return result
