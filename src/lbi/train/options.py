"""Training's result record and error class (its options are `lbi.config.TrainConfig`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lbi.config import TrainConfig


class TrainError(RuntimeError):
    """Training cannot go on (bad data, a chat template that hides the targets, a failed export)."""


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
