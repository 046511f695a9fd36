"""The embedding door's backends: `hash`, `minilm` (real int8 ONNX model), `openai:MODEL`."""

from __future__ import annotations

import json
import math
import re
import struct
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from lbi.config import Config
from lbi.embed.assets import minilm_tokenizer_json, package_dir
from lbi.embed.base import Embedder, EmbedError, make_embedder
from lbi.embed.hashing import HashingEmbedder
from lbi.embed.minilm import MiniLMEmbedder

KEY_ENV = "LBI_TEST_EMBED_KEY"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- hash ------------------------------------------------------------------------------------


def test_hash_embedder_is_deterministic_normalised_and_lexical() -> None:
    emb = make_embedder("hash", Config())
    assert isinstance(emb, Embedder) and emb.dim == 256
    texts = ["count the singers", "count the singers of the band", "the weather is sunny", ""]
    vectors = emb.embed(texts)
    assert_unit_rows(vectors, 4, 256)
    np.testing.assert_array_equal(vectors, HashingEmbedder().embed(texts))  # a fresh instance
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert cosine(vectors[0], emb.embed(["Count the SINGERS!"])[0]) == pytest.approx(1.0)


def test_hash_embedder_dimension_and_bad_arguments() -> None:
    assert make_embedder("hash:32", Config()).embed(["a b c"]).shape == (1, 32)
    with pytest.raises(EmbedError, match="integer"):
        make_embedder("hash:wide", Config())
    with pytest.raises(EmbedError, match="unknown embedder"):
        make_embedder("nope", Config())


# -- minilm ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    emb = make_embedder("minilm", Config())
    assert isinstance(emb, MiniLMEmbedder)
    return emb


def test_minilm_assets_are_read_without_importing_their_packages() -> None:
    tokenizer = json.loads(minilm_tokenizer_json())
    assert tokenizer["model"]["type"] == "WordPiece"
    assert "all_minilm_l6_v2" not in sys.modules  # its __init__ prints a line


def test_minilm_shapes_normalisation_and_determinism(minilm: MiniLMEmbedder) -> None:
    texts = ["SELECT name FROM singer", "Click the submit button.", "", "word " * 600]
    vectors = minilm.embed(texts)
    assert_unit_rows(vectors, 4, 384)
    np.testing.assert_array_equal(vectors, minilm.embed(texts))
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_rows_do_not_depend_on_batching_or_order(minilm: MiniLMEmbedder) -> None:
    texts = [f"the singer number {i} sang {'a very long song ' * (i % 4)}" for i in range(7)]
    together = minilm.embed(texts)
    one_by_one = np.stack([minilm.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    small_batches = MiniLMEmbedder(batch_size=2).embed(texts[::-1])[::-1]
    np.testing.assert_allclose(together, small_batches, atol=1e-5)


def test_minilm_ranks_by_meaning(minilm: MiniLMEmbedder) -> None:
    q, near, far = minilm.embed(
        ["how many singers are there", "count the singers", "the weather is sunny"]
    )
    assert cosine(q, near) > 0.6 > 0.2 > cosine(q, far)
    docs = minilm.embed(
        ["Type your password into the password field.", "The stadium can hold 50,000 people."]
    )
    query = minilm.embed(["enter the password"])[0]
    assert cosine(query, docs[0]) > cosine(query, docs[1])


def _bert_fp32(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The fp32 sentence-transformers model, as numpy, from the safetensors in the wheel's zip."""
    folder = package_dir("all_minilm_l6_v2")
    assert folder is not None
    raw = zipfile.ZipFile(folder / "model.zip").read("model.safetensors")
    size = struct.unpack("<Q", raw[:8])[0]
    header, base, w = json.loads(raw[8 : 8 + size]), 8 + size, {}
    for name, t in header.items():
        if name != "__metadata__" and t["dtype"] == "F32":
            lo, hi = t["data_offsets"]
            w[name.removeprefix("bert.")] = np.frombuffer(
                raw[base + lo : base + hi], np.float32
            ).reshape(t["shape"])

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[p + ".weight"] + w[p + ".bias"]

    def dense(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    erf = np.vectorize(math.erf)
    b, t = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
    x = norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    masked = (1 - mask[:, None, None, :]) * -1e9
    for layer in range(6):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            dense(x, p + f"attention.self.{n}").reshape(b, t, 12, 32).transpose(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32) + masked
        att = np.exp(att - att.max(-1, keepdims=True))
        ctx = (att / att.sum(-1, keepdims=True) @ v).transpose(0, 2, 1, 3).reshape(b, t, 384)
        x = norm(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        x = norm(
            x + dense(0.5 * h * (1 + erf(h / np.sqrt(2))), p + "output.dense"),
            p + "output.LayerNorm",
        )
    pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.mark.slow
def test_minilm_int8_matches_the_fp32_model(minilm: MiniLMEmbedder) -> None:
    texts = ["how many singers are there", "SELECT name FROM singer WHERE age > 30", "Click OK."]
    enc = minilm.runtime.tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    agreement = (minilm.embed(texts) * _bert_fp32(ids, mask)).sum(axis=1)
    assert agreement.min() > 0.998, agreement


# -- openai-compatible -----------------------------------------------------------------------


class _FakeEmbeddings(BaseHTTPRequestHandler):
    """Unnormalised vectors in reverse index order, so the client must sort and normalise."""

    calls: list[dict[str, Any]]
    reject_key: str | None = None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        self.calls.append({"path": self.path, "body": body, "auth": auth})
        if self.reject_key and auth.endswith(self.reject_key):
            self._send(
                401, {"error": {"message": f"Incorrect API key provided: {self.reject_key}"}}
            )
            return
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 3.0, 4.0]}
            for i, t in enumerate(body["input"])
        ]
        self._send(200, {"object": "list", "data": rows[::-1], "model": body["model"]})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, type[_FakeEmbeddings]]]:
    handler = type("Handler", (_FakeEmbeddings,), {"calls": [], "reject_key": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def openai_config(base_url: str, batch_size: int = 2) -> Config:
    return Config.model_validate(
        {
            "models": {"openai": {"base_url": base_url, "api_key_env": KEY_ENV}},
            "embed": {"batch_size": batch_size},
            "door": {"max_retries": 0},
        }
    )


def test_openai_embedder_batches_sorts_and_normalises(
    fake: tuple[str, type[_FakeEmbeddings]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, handler = fake
    monkeypatch.delenv(KEY_ENV, raising=False)  # localhost needs no key: "EMPTY" is sent
    emb = make_embedder("openai:tiny-embed", openai_config(base_url))
    assert emb.name == "openai:tiny-embed"
    vectors = emb.embed(["a", "bbb", "cc", ""])
    assert_unit_rows(vectors, 4, 3)
    np.testing.assert_allclose(vectors[1], np.array([3.0, 3.0, 4.0]) / math.sqrt(34), rtol=1e-6)
    np.testing.assert_allclose(vectors[3], np.array([1.0, 3.0, 4.0]) / math.sqrt(26), rtol=1e-6)
    assert [c["body"]["input"] for c in handler.calls] == [["a", "bbb"], ["cc", " "]]
    assert {c["path"] for c in handler.calls} == {"/v1/embeddings"}
    assert all(c["auth"] == "Bearer EMPTY" for c in handler.calls)
    assert emb.dim == 3 and len(handler.calls) == 2  # known from the answer, no extra request


def test_openai_embedder_sends_the_key_but_never_shows_it(
    fake: tuple[str, type[_FakeEmbeddings]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, handler = fake
    monkeypatch.setenv(KEY_ENV, "sk-test-secret-123")
    emb = make_embedder("openai:tiny-embed", openai_config(base_url))
    assert emb.dim == 3  # asked of the endpoint
    assert handler.calls[0]["auth"] == "Bearer sk-test-secret-123"
    handler.reject_key = "sk-test-secret-123"
    with pytest.raises(EmbedError, match="401") as info:
        emb.embed(["x"])
    assert "sk-test-secret-123" not in str(info.value) and KEY_ENV in str(info.value)


def test_openai_embedder_needs_a_key_for_remote_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(EmbedError, match=KEY_ENV):
        make_embedder("openai:text-embedding-3-small", openai_config("https://api.example.com/v1"))
    with pytest.raises(EmbedError, match="model name"):
        make_embedder("openai", openai_config("http://127.0.0.1:1/v1"))


def test_missing_minilm_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import lbi.embed.assets as assets

    monkeypatch.setattr(assets, "package_dir", lambda name: None)
    with pytest.raises(EmbedError, match=re.escape(assets.MINILM_ONNX_INSTALL)):
        assets.minilm_onnx_path()
    assets.minilm_tokenizer_json.cache_clear()
    try:
        with pytest.raises(EmbedError, match=re.escape(assets.MINILM_TOKENIZER_INSTALL)):
            assets.minilm_tokenizer_json()
    finally:
        assets.minilm_tokenizer_json.cache_clear()
