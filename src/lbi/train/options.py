"""Training options (the `train:` config section), the result record, and the error class.

Defaults follow the paper's fine-tuning recipe (lr 2e-5, 3% warmup, 3 epochs, 8k context,
effective batch 128). The paper fine-tunes all weights; here it is LoRA, for which 2e-5 is a
conservative rate: raise `lr` (1e-4 .. 2e-4 is usual for LoRA) when data is small.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainError(RuntimeError):
    """Training cannot go on (bad data, a chat template that hides the targets, a failed export)."""


class TrainConfig(BaseModel):
    """Every knob of `lbi.train.sft.train`; one field per line so `--set train.x=y` finds it."""

    model_config = ConfigDict(extra="forbid")

    base: str = "local"  # local | PATH (HF folder) | PATH.gguf
    lr: float = 2e-5
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    epochs: float = 3.0
    max_steps: int | None = None  # overrides epochs when set
    max_length: int = 8192  # capped at the model's own context limit
    batch_size: int = 128  # effective batch: micro_batch_size x accumulation steps (x GPUs)
    micro_batch_size: int = 1
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] | Literal["all-linear"] = "all-linear"
    eval_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)  # held-out slice for validation loss
    eval_max: int = 200  # cap on held-out examples (eval is a forward pass over each)
    eval_before: bool = True  # measure the held-out loss of the untrained model too
    eval_steps: int | None = None  # None = once per epoch
    save_steps: int | None = None  # None = once per epoch; checkpoints make the run resumable
    save_total_limit: int = 2
    resume: bool = True  # continue from the last checkpoint in out_dir when there is one
    gradient_checkpointing: bool = False
    tool_calls: Literal["auto", "template", "inline"] = "auto"
    seed: int = 0
    logging_steps: int = 1
    merge: bool = True  # write the merged model (safetensors) next to the adapter
    gguf: Literal["none", "f32", "f16", "bf16", "q8_0"] = "f16"  # GGUF of the merged model
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch CPU threads; None = torch's default (all cores)


class TrainResult(BaseModel):
    """What a run produced and how it went; written as `train_result.json` in the output folder."""

    out_dir: str
    base: str
    adapter_dir: str
    merged_dir: str | None = None
    gguf_path: str | None = None
    n_train: int
    n_eval: int
    n_dropped: int = 0  # examples with no assistant token left after truncation
    train_tokens: int = 0  # tokens through the model, all epochs (padding excluded)
    target_tokens: int = 0  # tokens that carry loss (assistant turns), one epoch
    steps: int = 0
    train_loss: float | None = None
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    train_s: float = 0.0
    tokens_per_s: float = 0.0
    resumed_from: str | None = None
    device: str = "cpu"
    options: TrainConfig = Field(default_factory=TrainConfig)
