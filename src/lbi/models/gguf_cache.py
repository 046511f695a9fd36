"""A GGUF file's dequantized model and tokenizer, kept as a Hugging Face folder.

transformers dequantizes a `.gguf` on every load: 32 s for SmolLM2-135M and 9 s for its tokenizer
alone on a busy 2-core machine, against 0.3 s and 0.4 s from a saved folder. So the first load
saves what it built (`LBI_CACHE_DIR`, default `~/.cache/lbi`, under `gguf-hf/`), keyed by the
file's path, size and mtime and by the transformers version, and later loads read the folder.
Models over `MAX_BYTES` of weights as loaded are not kept: a 7B GGUF would be 28 GB in fp32.
Files are moved in one at a time with `config.json` (model) or `tokenizer_config.json`
(tokenizer) last, so a folder that has the marker is complete, and a crash leaves only scratch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from lbi.models.assets import lbi_cache_dir

MAX_BYTES = 2 << 30
MODEL_MARK, TOKENIZER_MARK = "config.json", "tokenizer_config.json"


def cache_root() -> Path:
    return lbi_cache_dir() / "gguf-hf"


def folder_for(gguf: Path, dtype: str) -> Path:
    import transformers

    st = gguf.stat()
    key = f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}|{transformers.__version__}|{dtype}"
    return cache_root() / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def cached(gguf: Path, mark: str, dtype: str = "float32") -> Path | None:
    """The cache folder when it holds a complete model (`MODEL_MARK`) or tokenizer."""
    folder = folder_for(gguf, dtype)
    return folder if (folder / mark).is_file() else None


def _move_in(scratch: Path, folder: Path, mark: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in scratch.iterdir())
    for name in [n for n in names if n != mark] + [mark]:
        os.replace(scratch / name, folder / name)


def keep(gguf: Path, tokenizer: Any, model: Any | None = None, dtype: str = "float32") -> None:
    """Save the tokenizer (and the model, when it is small enough) for the next load. A cache
    that cannot be written (read-only home, full disk) only costs the next load its time."""
    if model is not None:
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        if size > MAX_BYTES:
            model = None
    folder = folder_for(gguf, dtype)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".scratch-") as tmp:
            scratch = Path(tmp)
            tokenizer.save_pretrained(scratch)
            if model is not None:
                model.save_pretrained(scratch)
            _move_in(scratch, folder, MODEL_MARK if model is not None else TOKENIZER_MARK)
    except OSError:
        pass  # files without their marker are never read
