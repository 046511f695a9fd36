"""`minilm`: all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings, in-process, no torch, no network.

The int8 model is 23 MB and embeds several hundred short texts a second on 2 CPU threads; its
vectors agree with the fp32 sentence-transformers model to cosine ≈0.999. Pipeline as in
sentence-transformers: WordPiece (lower-cased, ≤256 tokens) -> BERT -> mean over real tokens
-> L2 normalise.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from lbi.embed.assets import minilm_onnx_path, minilm_tokenizer_json
from lbi.embed.base import EmbedError, register_embedder

if TYPE_CHECKING:
    from lbi.config import Config

DIM = 384
MAX_TOKENS = 256  # the model's sentence-transformers max_seq_length
INTRA_OP_THREADS = 2
ONNX_INSTALL = "pip install 'lbi[local]'"


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average token vectors over the attention mask, then L2-normalise each row (float32)."""
    weights = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    return l2_normalise(pooled)


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)


class _Runtime:
    """The tokenizer and ONNX session, loaded once per process (~0.3 s) and shared."""

    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedError(f"the minilm embedder needs {e.name}; run `{ONNX_INSTALL}`") from None
        self.tokenizer = Tokenizer.from_str(minilm_tokenizer_json())
        # The shipped tokenizer.json pads every text to 128; pad per batch and cut at 256 instead.
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: the CPU is shared with llama.cpp and browsers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: Any = ort.InferenceSession(
            str(minilm_onnx_path()), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.lock = threading.Lock()  # one run at a time: a run already uses every thread

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self.lock:
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return mean_pool(hidden, mask)


_RUNTIME: _Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def runtime() -> _Runtime:
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is None:
            _RUNTIME = _Runtime(INTRA_OP_THREADS)
        return _RUNTIME


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via onnxruntime + the `tokenizers` WordPiece tokenizer."""

    name = "minilm"
    dim = DIM

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = max(1, batch_size)
        self.runtime = runtime()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch; rows go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self.runtime.embed_batch([texts[i] for i in idx])
        return out


@register_embedder("minilm")
def make_minilm(arg: str, config: Config) -> MiniLMEmbedder:
    if arg:
        raise EmbedError(f"the minilm embedder takes no argument, got 'minilm:{arg}'")
    return MiniLMEmbedder(batch_size=config.embed.batch_size)
