"""`TextIndex`: one index, two ways in — by observation (exact + BM25) and by meaning (dense).

Items are `(item_id, lexical_text, dense_text)`. The two texts differ because the two searches
ask different questions: "which stored state looks like the one I'm in?" (lexical) and "which
stored demonstration does what I want to do?" (dense). Both parts address items by the same
position, so an item is embedded before anything is appended: a failed embedding leaves the
index as it was. One lock serialises adds and searches (a search is ~1 ms; faiss and the lazy
BM25 rebuild are not safe to run beside an add), so agents on several threads can share an index;
query embedding happens outside it.

Ties are broken by item id, in both searches and whatever the dense index's kind (flat or HNSW):
each part is asked for more than k, the hits are sorted by (score to 6 significant digits, id),
and the fetch widens while the last hit fetched still ties with the k-th, so the same index answers the
same query with the same list, on every run and before and after the switch to HNSW.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lbi.retrieval.dense import DenseIndex, HnswParams
from lbi.retrieval.errors import RetrievalError
from lbi.retrieval.lexical import LexicalIndex, tie_round
from lbi.retrieval.persist import atomic_dir

if TYPE_CHECKING:
    from lbi.config import Config
    from lbi.embed.base import Embedder

FORMAT = 2  # 2: the lexical part keeps exact-match keys, not texts
Item = tuple[str, str, str]  # (item_id, lexical_text, dense_text)
Scored = list[tuple[str, float]]  # [(item_id, score)], best first


def _tie(score: float) -> float:
    """Scores equal to 6 significant digits tie (float32 kernels differ in the last bits)."""
    return float(tie_round(np.asarray([score]))[0])


def _rank_key(hit: tuple[str, float]) -> tuple[float, str]:
    return (-_tie(hit[1]), hit[0])


class TextIndex:
    def __init__(
        self, embedder: Embedder, exact_threshold: int = 20000, hnsw: HnswParams | None = None
    ) -> None:
        self.embedder = embedder
        self.ids: list[str] = []
        self._pos: dict[str, int] = {}
        self.lexical = LexicalIndex()
        self.dense = DenseIndex(embedder.dim, exact_threshold, hnsw)
        self._lock = threading.Lock()
        self._rank: np.ndarray | None = None  # each position's rank in id order (lazily)

    @classmethod
    def from_config(cls, embedder: Embedder, config: Config) -> TextIndex:
        return cls(embedder, exact_threshold=config.retrieval.exact_threshold)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._pos

    def add(self, items: Iterable[Item]) -> int:
        """Add items whose id is new (repeats, also within `items`, are skipped); returns how many."""
        fresh: dict[str, Item] = {}
        for item in items:
            if item[0] not in self._pos and item[0] not in fresh:
                fresh[item[0]] = item
        if not fresh:
            return 0
        new = list(fresh.values())
        vectors = self._embed([dense for _, _, dense in new])
        with self._lock:
            keep = [n for n, item in enumerate(new) if item[0] not in self._pos]  # racing adds
            new = [new[n] for n in keep]
            if not new:
                return 0
            self.dense.add(vectors[keep])
            self.lexical.add([lexical for _, lexical, _ in new])
            for item_id, _, _ in new:
                self._pos[item_id] = len(self.ids)
                self.ids.append(item_id)
            self._rank = None
        return len(new)

    def _ranks(self) -> np.ndarray:
        """Each position's place in id order: ties are broken by it (held under the lock)."""
        if self._rank is None or len(self._rank) != len(self.ids):
            rank = np.empty(len(self.ids), dtype=np.int64)
            rank[np.argsort(np.asarray(self.ids), kind="stable")] = np.arange(len(self.ids))
            self._rank = rank
        return self._rank

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.dense.dim):
            raise RetrievalError(
                f"embedder {self.embedder.name!r} returned shape {vectors.shape} "
                f"for {len(texts)} texts of dimension {self.dense.dim}"
            )
        return vectors

    def _positions(self, exclude: Iterable[str]) -> set[int]:
        return {self._pos[i] for i in exclude if i in self._pos}

    def _ranked(self, search: Callable[[int], list[tuple[int, float]]], k: int) -> Scored:
        """The k best of `search(n)` (n positions, best first), ties in id order."""
        if k <= 0:
            return []
        n = k
        while True:
            fetch = min(len(self.ids), 2 * n + 8)
            hits = search(fetch)
            named = sorted(((self.ids[p], s) for p, s in hits), key=_rank_key)
            if len(named) <= k or len(hits) < fetch or fetch >= len(self.ids):
                return named[:k]
            if _tie(named[-1][1]) != _tie(named[k - 1][1]):
                return named[:k]  # the last fetched scores below the k-th: every tie is in
            n = fetch  # the k-th hit may tie with one not fetched yet: widen

    # -- search -------------------------------------------------------------------------
    def search_lexical(self, text: str, k: int, exclude: Iterable[str] = ()) -> Scored:
        """Observation-based: exact matches of the normalised text first (score inf), then BM25."""
        with self._lock:
            skip = self._positions(exclude)
            hits = self.lexical.search(text, k, skip, self._ranks())
            return [(self.ids[p], s) for p, s in hits]

    def search_dense(self, query_text: str, k: int, exclude: Iterable[str] = ()) -> Scored:
        """Model-based: embed `query_text`, then nearest items by cosine similarity."""
        return self.search_dense_vec(self._embed([query_text])[0], k, exclude)

    def search_dense_vec(self, vec: np.ndarray, k: int, exclude: Iterable[str] = ()) -> Scored:
        with self._lock:
            skip = self._positions(exclude)
            return self._ranked(lambda n: self.dense.search(vec, n, skip), k)

    # -- persistence --------------------------------------------------------------------
    def meta(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "embedder": self.embedder.name,
            "count": len(self.ids),
            "approximate": self.dense.approximate,
            "dense": self.dense.params(),
        }

    def save(self, folder: str | Path) -> None:
        """Write the index to `folder`, replacing what was there only once all is written."""
        with atomic_dir(folder) as scratch:
            self.write_into(scratch)

    def write_into(self, scratch: Path) -> None:
        """The files of `save`, into an existing folder (used by wrappers that add their own)."""
        with self._lock:
            self._write_into(scratch)

    def _write_into(self, scratch: Path) -> None:
        (scratch / "ids.json").write_text(json.dumps(self.ids))
        self.lexical.save(scratch / "lexical")
        self.dense.save(scratch / "dense.faiss")
        (scratch / "meta.json").write_text(json.dumps(self.meta(), indent=1))

    @classmethod
    def load(cls, folder: str | Path, embedder: Embedder) -> TextIndex:
        """Read an index saved by `save`; the embedder must be the one it was built with."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            ids = json.loads((folder / "ids.json").read_text())
        except (OSError, ValueError) as e:
            raise RetrievalError(f"no readable index in {folder}: {e}") from None
        if meta.get("format") != FORMAT:
            raise RetrievalError(
                f"index in {folder} has format {meta.get('format')}, expected {FORMAT}"
            )
        if meta["embedder"] != embedder.name or meta["dense"]["dim"] != embedder.dim:
            raise RetrievalError(
                f"index in {folder} was built with embedder {meta['embedder']!r} "
                f"(dim {meta['dense']['dim']}), not {embedder.name!r} (dim {embedder.dim}); "
                "load it with the same embedder or rebuild it"
            )
        index = cls(embedder)
        index.dense = DenseIndex.load(folder / "dense.faiss", meta["dense"])
        index.lexical = LexicalIndex.load(folder / "lexical")
        if not (len(ids) == len(index.dense) == len(index.lexical) == meta["count"]):
            raise RetrievalError(
                f"index in {folder} is inconsistent: its parts hold different counts"
            )
        index.ids = list(ids)
        index._pos = {item_id: pos for pos, item_id in enumerate(index.ids)}
        return index
