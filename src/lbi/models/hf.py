"""`hf:PATH`: a Hugging Face causal LM run in-process with transformers (CPU fp32, GPU bf16).

PATH is a model folder (`config.json` + safetensors, e.g. a merged fine-tune), a LoRA adapter
folder (`adapter_config.json`; its base is loaded first), or a `.gguf` file, which transformers
dequantizes to float32. It exists so a trained model can be evaluated before and without a GGUF
export; for a fair base-vs-trained comparison serve both through the same runtime (both `hf:` or
both `local:` GGUF, see `lbi.train.export`). No constrained decoding: JSON schemas and grammars
are llama.cpp features, so requests that need them are refused rather than silently unconstrained.

The loader lives here rather than in `lbi.train` because data flows one way: training imports
models, never the reverse.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.models import gguf_cache
from lbi.models.assets import weights_version
from lbi.models.base import Capabilities, ChatRequest, ChatResponse, ModelError
from lbi.models.chat import with_system
from lbi.models.registry import register
from lbi.models.workers import DaemonPool

if TYPE_CHECKING:
    from lbi.config import Config

TRAIN_INSTALL = "pip install 'lbi[train]'"
# Every model is a local path: keep huggingface_hub from trying the network (and its telemetry).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# OpenMP threads spin while they wait for each other; on a 2-core machine shared with other work
# that made LoRA training 6x slower with 2 threads (9 vs 74 tok/s measured). PASSIVE makes them
# sleep instead. It only takes effect if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class Loaded:
    """A model and its tokenizer, plus where they came from (a folder or a GGUF file)."""

    model: Any
    tokenizer: Any
    source: str
    device: str


def pick_device() -> tuple[str, Any]:
    """GPU in bf16 when there is one (bf16 trains stably without loss scaling), else CPU fp32."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return "cuda", dtype
    return "cpu", torch.float32


def _where(path: Path) -> tuple[str, dict[str, Any]]:
    """(folder, extra from_pretrained kwargs) for a model folder or a `.gguf` file."""
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a Hugging Face model folder (no config.json)")
    return str(path), {}


def load_tokenizer(source: str | Path) -> Any:
    """Only the tokenizer (with its chat template): seconds instead of a full model load."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ModelError(f"hf models need torch and transformers; run `{TRAIN_INSTALL}`") from None
    path = Path(source).expanduser().resolve()
    folder, kwargs = _where(path)
    if kwargs and (kept := gguf_cache.cached(path, gguf_cache.TOKENIZER_MARK)):
        return AutoTokenizer.from_pretrained(kept)
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    if kwargs:
        gguf_cache.keep(path, tokenizer)
    return tokenizer


def load_causal_lm(source: str | Path, device: str | None = None) -> Loaded:
    """Load a model folder or a `.gguf` file (dequantized) with its tokenizer and chat template."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelError(f"hf models need torch and transformers; run `{TRAIN_INSTALL}`") from None
    path = Path(source).expanduser().resolve()
    chosen, dtype = pick_device()
    device = device or chosen
    if device == "cpu":
        dtype = torch.float32
    folder, kwargs = _where(path)
    dtype_name = str(dtype).removeprefix("torch.")
    kept = gguf_cache.cached(path, gguf_cache.MODEL_MARK, dtype_name) if kwargs else None
    if kept:
        folder, kwargs = str(kept), {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"transformers could not load {path}: {e}") from None
    _drop_gguf_quantizer(model)
    if kwargs:  # dequantized from the GGUF just now
        gguf_cache.keep(path, tokenizer, model, dtype_name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Loaded(model=model.to(device), tokenizer=tokenizer, source=str(path), device=device)


def _drop_gguf_quantizer(model: Any) -> None:
    """A dequantized GGUF model keeps a GGUF 'quantizer' that blocks `save_pretrained`.

    Without the `kernels` package transformers unpacks every GGUF weight into a plain fp32
    `nn.Linear`, so the model is a dense one; we check that and then drop the marker.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or "Gguf" not in type(quantizer).__name__:
        return
    packed = [n for n, m in model.named_modules() if "Gguf" in type(m).__name__]
    if packed:
        raise ModelError(
            f"the GGUF weights stayed packed ({packed[0]}, ...); uninstall `kernels` to train on them"
        )
    quantizer.remove_quantization_config(model)


def _adapter_base(folder: Path) -> str | None:
    """The base model a LoRA adapter folder names; None when `folder` is no adapter."""
    adapter_cfg = folder / "adapter_config.json"
    if not adapter_cfg.is_file():
        return None
    try:
        base = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path")
    except (ValueError, AttributeError) as e:
        raise ModelError(f"{adapter_cfg} is not a JSON object ({e})") from None
    if not base:
        raise ModelError(f"{adapter_cfg} names no base model")
    return str(base)


def serving_paths(path: Path) -> list[Path]:
    """The files `load_for_serving(path)` reads: the folder or file, and an adapter's local base."""
    base = _adapter_base(path)
    return [path, Path(base)] if base and Path(base).exists() else [path]


def load_for_serving(path: str | Path) -> Loaded:
    """A model folder, a `.gguf` file, or a LoRA adapter folder on top of its recorded base."""
    folder = Path(path).expanduser().resolve()
    base = _adapter_base(folder)
    if base is None:
        loaded = load_causal_lm(folder)
    else:
        loaded = load_causal_lm(base)
        from peft import PeftModel

        adapted: Any = PeftModel.from_pretrained(loaded.model, str(folder))
        loaded.model = adapted.merge_and_unload()
        loaded.source = str(folder)
    loaded.model.eval()
    return loaded


def _cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    for s in stop or []:
        at = text.find(s)
        if at >= 0:
            return text[:at], True
    return text, False


def chat_generate(loaded: Loaded, request: ChatRequest) -> ChatResponse:
    """One chat turn with `generate`: greedy at T=0 (deterministic), seeded sampling above."""
    import torch

    tok = loaded.tokenizer
    ids = tok.apply_chat_template(
        with_system(request.messages),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"].to(loaded.device)
    sample = request.temperature > 0
    kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens, "do_sample": sample}
    if sample:
        kwargs["temperature"] = request.temperature
        torch.manual_seed(request.seed if request.seed is not None else 0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    with torch.no_grad():
        out = loaded.model.generate(
            ids, attention_mask=torch.ones_like(ids), pad_token_id=tok.pad_token_id, **kwargs
        )
    new = out[0, ids.shape[1] :]
    text, stopped = _cut_at_stop(tok.decode(new, skip_special_tokens=True), request.stop)
    hit_eos = len(new) < request.max_tokens or (len(new) > 0 and int(new[-1]) == tok.eos_token_id)
    return ChatResponse(
        text=text,
        prompt_tokens=int(ids.shape[1]),
        completion_tokens=len(new),
        finish_reason="stop" if stopped or hit_eos else "length",
    )


class HFModel:
    """The `Model` protocol over transformers' `generate`: greedy at T=0, seeded sampling above."""

    capabilities = Capabilities(json_schema=False, grammar=False, tools=False, seed=True)
    timeout_s: float | None = None  # generate() cannot be stopped midway: the door waits

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.weights_version = weights_version(*serving_paths(path))
        self._loaded: Loaded | None = None
        self._lock = threading.Lock()
        # One worker: generate() already uses every core, and torch's RNG is process-global.
        self._executor = DaemonPool(1, "lbi-hf")  # exit does not wait for a generate()

    def _get(self) -> Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = load_for_serving(self.path)
            return self._loaded

    def generate(self, request: ChatRequest) -> ChatResponse:
        return chat_generate(self._get(), request)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.tools or request.json_schema is not None or request.grammar is not None:
            raise ModelError("hf models take plain chat only: no tools, json_schema or grammar")
        started = time.perf_counter()
        response = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.generate, request
        )
        response.latency_s = time.perf_counter() - started
        return response

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@register("hf")
def make_hf(arg: str, config: Config) -> HFModel:
    """`hf:PATH` — a model folder, an adapter folder, or a GGUF file; loaded on first call."""
    if not arg:
        raise ModelError("hf needs a path: hf:PATH (a model folder, adapter folder or .gguf file)")
    path = Path(arg).expanduser().resolve()
    if not path.exists():
        raise ModelError(f"hf model path not found: {path}")
    return HFModel(name=f"hf:{arg}", path=path)
