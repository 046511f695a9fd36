"""Model-based retrieval: inner-product search over unit vectors with faiss.

Below `exact_threshold` vectors a flat index is exact and already fast (a 20k x 384 scan is about
a millisecond); above it the index switches, once, to HNSW, which adds incrementally and answers
in well under a millisecond at 100k. faiss' HNSW defaults (M=32, efConstruction=40, efSearch=16)
can miss a fifth of the true top 5 on sentence embeddings. On 100k MiniLM vectors of the bench
corpus (2 cores): defaults 0.946 recall@5; efConstruction 100 -> 0.983 at efSearch 16, 0.999 at 32,
1.000 at 64 (0.24 ms); efConstruction 200 gained nothing more and doubled the build (69 s vs 31 s).
efSearch 128 kept headroom for corpora less clustered than that one, but not at a million:
bench/scale.py's 830k hash-embedded toy examples gave recall@5 0.913 at efSearch 128 (1.2 ms a
`model` step), so the default is 256 (about twice the search time, still a few ms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from lbi.retrieval.errors import RetrievalError


@dataclass(frozen=True)
class HnswParams:
    m: int = 32  # graph degree: more links, better recall, more memory (4*m*2 bytes a vector)
    ef_construction: int = 100  # candidate list while building: better graph, slower add
    ef_search: int = 256  # candidate list while searching: the recall/latency dial


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise RetrievalError(f"expected vectors of dimension {dim}, got shape {vectors.shape}")
    return matrix


class DenseIndex:
    """Vectors addressed by position (0, 1, 2, ... in the order added)."""

    def __init__(self, dim: int, exact_threshold: int, hnsw: HnswParams | None = None) -> None:
        self.dim = dim
        self.exact_threshold = exact_threshold
        self.hnsw = hnsw or HnswParams()
        self._index: faiss.Index = faiss.IndexFlatIP(dim)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexHNSWFlat)

    def add(self, vectors: np.ndarray) -> None:
        matrix = _as_matrix(vectors, self.dim)
        if not self.approximate and len(self) + len(matrix) >= self.exact_threshold:
            self._switch_to_hnsw()
        self._index.add(matrix)

    def _switch_to_hnsw(self) -> None:
        """Move the vectors held so far into a fresh HNSW graph (done once, when the size crosses)."""
        held = self._index.reconstruct_n(0, len(self)) if len(self) else None
        graph = faiss.IndexHNSWFlat(self.dim, self.hnsw.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.hnsw.ef_construction
        graph.hnsw.efSearch = self.hnsw.ef_search
        if held is not None:
            graph.add(held)
        self._index = graph

    def search(self, vector: np.ndarray, k: int, exclude: set[int]) -> list[tuple[int, float]]:
        """The k nearest positions by inner product, best first, never one in `exclude`."""
        if k <= 0 or len(self) == 0:
            return []
        query = _as_matrix(vector, self.dim)
        # faiss filters inside the search, so excluded ids never take a slot of the k.
        batch = faiss.IDSelectorBatch(np.fromiter(exclude, dtype=np.int64)) if exclude else None
        selector = faiss.IDSelectorNot(batch) if batch is not None else None
        params: faiss.SearchParameters
        if self.approximate:
            params = faiss.SearchParametersHNSW(efSearch=max(self.hnsw.ef_search, k))  # type: ignore[attr-defined]
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        # One query gains nothing from OpenMP threads and pays their hand-off: on a busy 2-core
        # machine a flat 10k search took 16 ms with 2 threads and 0.3 ms with 1.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            _, ids = self._index.search(query, min(k, len(self)), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        found = np.asarray([i for i in ids[0] if i >= 0], dtype=np.int64)
        return list(zip(found.tolist(), self._rescore(query[0], found), strict=True))

    def _rescore(self, query: np.ndarray, positions: np.ndarray) -> list[float]:
        """Exact inner products of the found vectors, computed the same way whatever the index:
        flat and HNSW scan with different kernels, whose last-bit differences (0.77777779 vs
        0.77777785 for one pair) would otherwise reorder ties when the index switches."""
        if not len(positions):
            return []
        held = np.stack([self._index.reconstruct(int(p)) for p in positions])
        return [float(s) for s in held.astype(np.float64) @ query.astype(np.float64)]

    def vectors(self) -> np.ndarray:
        """All stored vectors (a copy), e.g. to compare the approximate index with exact search."""
        return self._index.reconstruct_n(0, len(self)) if len(self) else np.empty((0, self.dim))

    # -- persistence --------------------------------------------------------------------
    def params(self) -> dict[str, object]:
        return {"dim": self.dim, "exact_threshold": self.exact_threshold, "hnsw": asdict(self.hnsw)}

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, params: dict[str, object]) -> DenseIndex:
        hnsw = params.get("hnsw")
        index = cls(
            dim=int(str(params["dim"])),
            exact_threshold=int(str(params["exact_threshold"])),
            hnsw=HnswParams(**hnsw) if isinstance(hnsw, dict) else None,
        )
        try:
            index._index = faiss.read_index(str(path))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "unreadable"
            raise RetrievalError(f"cannot read the dense index {path}: {first}") from None
        if index._index.d != index.dim:
            raise RetrievalError(
                f"dense index {path} has dimension {index._index.d}, expected {index.dim}"
            )
        return index
