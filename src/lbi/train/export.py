"""Adapter -> merged model (safetensors) -> GGUF, so llama.cpp (`local:PATH.gguf`) serves it.

The GGUF step runs llama.cpp's own `convert_hf_to_gguf.py`. It is not on PyPI as a package,
but the `llama-cpp-python` sdist vendors it with the matching `gguf-py` and `conversion/`
modules; we fetch that sdist once with pip (a registry, not a model hub), keep only those three
parts in the user cache, and run the script in a subprocess. `LBI_GGUF_CONVERTER` may point at
an existing llama.cpp checkout instead. The base model can be exported the same way, so a
base-vs-trained comparison runs both through one runtime at one precision.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from lbi.train.options import TrainError

LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir() -> Path:
    """A folder holding convert_hf_to_gguf.py (+ conversion/, gguf-py/); fetched on first use."""
    env = os.environ.get("LBI_GGUF_CONVERTER")
    if env:
        folder = Path(env).expanduser()
        if not (folder / "convert_hf_to_gguf.py").is_file():
            raise TrainError(f"LBI_GGUF_CONVERTER={folder} holds no convert_hf_to_gguf.py")
        return folder
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    folder = cache / "lbi" / ("gguf-converter-" + LLAMA_CPP_SDIST.split("==")[1])
    if not (folder / "convert_hf_to_gguf.py").is_file():
        fetch_converter(folder)
    return folder


def fetch_converter(dest: Path) -> None:
    """Download the llama-cpp-python sdist with pip and unpack only the converter into `dest`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        done = subprocess.run([*cmd, LLAMA_CPP_SDIST, "-d", tmp], capture_output=True, text=True)
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not sdists:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainError(f"could not fetch the GGUF converter ({LLAMA_CPP_SDIST}): {last}")
        staging = Path(tmp) / "converter"
        with tarfile.open(sdists[0]) as tar:
            for member in tar.getmembers():
                _, sep, rel = member.name.partition("/vendor/llama.cpp/")
                if sep and rel.startswith(_PARTS) and (member.isfile() or member.isdir()):
                    member.name = rel
                    tar.extract(member, staging, filter="data")
        if not (staging / "convert_hf_to_gguf.py").is_file():
            raise TrainError(f"{sdists[0].name} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging), dest)


def to_gguf(hf_dir: str | Path, out_path: str | Path, outtype: str = "f16") -> Path:
    """Convert a Hugging Face model folder to one GGUF file with llama.cpp's converter."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    script = converter_dir() / "convert_hf_to_gguf.py"
    cmd = [sys.executable, str(script), str(hf_dir), "--outfile", str(out), "--outtype", outtype]
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}  # use its own gguf-py
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out.is_file():
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()] or ["no output"]
        hint = " (pip install sentencepiece)" if "sentencepiece" in done.stderr else ""
        raise TrainError(f"GGUF conversion of {hf_dir} failed: {lines[-1]}{hint}")
    return out


def save_hf(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """A standalone model folder (safetensors + tokenizer + chat template) that `hf:` loads."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def merge_adapter(peft_model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Fold the LoRA deltas into the base weights and save the plain model."""
    return save_hf(peft_model.merge_and_unload(), tokenizer, out_dir)


def point_adapter_at(adapter_dir: Path, base: Path) -> None:
    """Record the base as a local path so `hf:ADAPTER` finds it (PEFT writes the load name)."""
    cfg_path = adapter_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base)
    cfg_path.write_text(json.dumps(cfg, indent=2))


def export_base(spec: str, out_dir: str | Path, gguf: str = "f16") -> tuple[Path, Path | None]:
    """The untrained base as a model folder and (unless gguf='none') a GGUF at the same precision
    as a trained export, for an apples-to-apples comparison."""
    from lbi.train.base import load_base

    loaded = load_base(spec, device="cpu")
    folder = save_hf(loaded.model, loaded.tokenizer, Path(out_dir) / "hf")
    if gguf == "none":
        return folder, None
    return folder, to_gguf(folder, Path(out_dir) / f"model.{gguf}.gguf", gguf)
