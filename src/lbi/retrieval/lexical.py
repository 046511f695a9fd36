"""Observation-based retrieval: an exact-match table in front of BM25 (bm25s).

The agent's current observation is often *literally* one it has seen before (the same database
schema, the same start page), so a hash of the whitespace/case-normalised text finds those
first, and BM25 ranks the rest by shared words.

Scoring is bm25s' (Lucene BM25 over a precomputed sparse score matrix, ~0.5 ms at 100k), but the
matrix is built here, vectorised, from token ids kept per document: bm25s' own `index()` loops
over documents in Python (~15 s for 100k observations on 2 cores), which would make every add
cost that. Token ids are kept, so an add only tokenizes the new texts and the matrix is rebuilt
lazily on the next search (BM25's idf and average length change with every document, so the
matrix cannot be patched in place). A test checks the matrix equals bm25s' own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import bm25s
import numpy as np

from lbi.retrieval.errors import RetrievalError

_TOKEN = re.compile(r"\w+")
EXACT_SCORE = math.inf  # exact matches rank above every BM25 score


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens; no stemming or stopwords (IDF already discounts common words)."""
    return _TOKEN.findall(text.lower())


def exact_key(text: str) -> str:
    """A hash of the text with case and runs of whitespace normalised away."""
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()[:20]


def tie_round(scores: np.ndarray) -> np.ndarray:
    """Scores to 6 significant digits (float64): scores equal at that precision tie, since
    float32 kernels (flat vs HNSW, BLAS builds) differ in the last bits."""
    out = np.asarray(scores, dtype=np.float64).copy()
    ok = np.isfinite(out) & (out != 0)
    scale = 10.0 ** (5 - np.floor(np.log10(np.abs(out[ok]))))
    out[ok] = np.round(out[ok] * scale) / scale
    return out


def best_in_order(
    scores: np.ndarray, k: int, order: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """The k highest positive scores, best first; equal scores (`tie_round`) by `order[pos]`
    (default: position). Every position that ties with the k-th is considered, however many."""
    if k <= 0 or scores.size == 0:
        return []
    top = top_k(scores, k)
    top = top[scores[top] > 0]
    if top.size == 0:
        return []
    floor = float(tie_round(scores[top[-1:]])[0])  # the k-th best, rounded
    # Everything that may round to the k-th or above; ties included, however many there are.
    cand = np.flatnonzero(scores >= np.float32(floor) * (1 - 1e-5))
    rounded = tie_round(scores[cand])
    keys = cand if order is None else order[cand]
    picked = cand[np.lexsort((keys, -rounded))][:k]
    return [(int(p), float(scores[p])) for p in picked]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first (argpartition, then sort only those k)."""
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return part[np.argsort(-scores[part], kind="stable")]


class LexicalIndex:
    """Exact-match table + BM25 over a growing list of texts, addressed by position."""

    k1 = 1.5  # bm25s' defaults
    b = 0.75

    def __init__(self) -> None:
        self.keys: list[str] = []  # each text's `exact_key`, by position (the texts are not kept)
        self._exact: dict[str, list[int]] = {}
        self.vocab: dict[str, int] = {}
        self._tokens: list[np.ndarray] = [np.empty(0, dtype=np.int32)]  # token ids, all docs
        self._lengths: list[np.ndarray] = [np.empty(0, dtype=np.int32)]  # tokens per doc
        self._bm25: bm25s.BM25 | None = None
        self._bm25_size = 0  # how many texts the current BM25 matrix covers
        # Exact-match buckets sorted by the last `order` searched with (`_sorted_for`).
        self._sorted: dict[str, np.ndarray] = {}
        self._sorted_for: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, texts: list[str]) -> None:
        start, vocab = len(self.keys), self.vocab
        ids: list[int] = []
        lengths: list[int] = []
        for offset, text in enumerate(texts):
            key = exact_key(text)
            self.keys.append(key)
            self._exact.setdefault(key, []).append(start + offset)
            words = tokenize(text)
            ids.extend(vocab.setdefault(w, len(vocab)) for w in words)
            lengths.append(len(words))
        self._tokens.append(np.asarray(ids, dtype=np.int32))
        self._lengths.append(np.asarray(lengths, dtype=np.int32))

    @property
    def stale(self) -> bool:
        """True when texts were added since BM25 was last built."""
        return self._bm25_size != len(self.keys)

    def rebuild(self) -> None:
        """Build the BM25 score matrix over every text (CSC: one column of doc scores per token)."""
        tokens, lengths = np.concatenate(self._tokens), np.concatenate(self._lengths)
        self._tokens, self._lengths = [tokens], [lengths]
        n, n_vocab = len(lengths), len(self.vocab)
        docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
        # Sorting by (token, doc) puts the pairs in CSC order; the run lengths are the tfs.
        pairs, tf = np.unique(tokens.astype(np.int64) * max(n, 1) + docs, return_counts=True)
        col, row = pairs // max(n, 1), pairs % max(n, 1)
        df = np.bincount(col, minlength=n_vocab)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avg_len = float(lengths.mean()) if lengths.sum() else 1.0
        tfc = tf / (tf + self.k1 * (1 - self.b + self.b * lengths[row] / avg_len))
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        bm25 = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        bm25.scores = {
            "data": (idf[col] * tfc).astype(np.float32),
            "indices": row.astype(np.int32),
            "indptr": indptr,
            "num_docs": n,
        }
        bm25.vocab_dict = dict(self.vocab)
        bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
        bm25.nonoccurrence_array = None
        self._bm25, self._bm25_size = bm25, n

    def search(
        self, text: str, k: int, exclude: set[int], order: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The k best positions: exact matches first (score +inf), then BM25 hits with score > 0;
        equal scores by `order[pos]` (default: position), so a caller that passes each position's
        id rank gets ties in id order. Exact matches of one text can number thousands (every
        task of a site starts on its home page): their bucket is kept sorted, so taking k of
        them costs k, not the bucket's size."""
        if k <= 0 or not self.keys:
            return []
        hits: list[tuple[int, float]] = []
        for pos in self._bucket(exact_key(text), order):
            if pos not in exclude:
                hits.append((int(pos), EXACT_SCORE))
                if len(hits) == k:
                    return hits
        scores = self.scores(text)
        skip = list(exclude) + [p for p, _ in hits]
        if skip:
            scores[np.asarray(skip, dtype=np.int64)] = -np.inf
        return hits + best_in_order(scores, k - len(hits), order)

    def _bucket(self, key: str, order: np.ndarray | None) -> np.ndarray | list[int]:
        bucket = self._exact.get(key, [])
        if order is None or len(bucket) < 2:
            return bucket
        if self._sorted_for is not order:
            self._sorted, self._sorted_for = {}, order
        done = self._sorted.get(key)
        if done is None or len(done) != len(bucket):
            positions = np.asarray(bucket, dtype=np.int64)
            done = self._sorted[key] = positions[np.argsort(order[positions], kind="stable")]
        return done

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every text for the query (unique query words; query repeats add nothing)."""
        if self.stale or self._bm25 is None:
            self.rebuild()
        assert self._bm25 is not None
        vocab = self._bm25.vocab_dict
        ids = sorted({vocab[t] for t in tokenize(text) if t in vocab})
        if not ids:
            return np.zeros(len(self.keys), dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    # -- persistence --------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Exact-match keys and token ids; the score matrix is rebuilt on load (a fraction of a
        second). The texts themselves are not kept (web observations are kilobytes each)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "keys.txt").write_text("".join(k + "\n" for k in self.keys))
        (folder / "vocab.json").write_text(json.dumps(list(self.vocab), ensure_ascii=False))
        np.save(folder / "tokens.npy", np.concatenate(self._tokens))
        np.save(folder / "lengths.npy", np.concatenate(self._lengths))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        index = cls()
        try:
            index.keys = (folder / "keys.txt").read_text().splitlines()
            index.vocab = {
                w: i for i, w in enumerate(json.loads((folder / "vocab.json").read_text()))
            }
            index._tokens = [np.load(folder / "tokens.npy")]
            index._lengths = [np.load(folder / "lengths.npy")]
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot load the lexical index in {folder}: {e}") from None
        if len(index._lengths[0]) != len(index.keys) or index._lengths[0].sum() != len(
            index._tokens[0]
        ):
            raise RetrievalError(f"lexical index in {folder} is inconsistent: token counts differ")
        for pos, key in enumerate(index.keys):
            index._exact.setdefault(key, []).append(pos)
        return index
