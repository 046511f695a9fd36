"""Retrieval benchmark: build time, per-step latency and dense recall at 10k and 100k examples.

Side by side in one run, on the same synthetic examples and queries:
  - observation retrieval: lbi (exact table + bm25s) vs rank-bm25 (BM25Okapi.get_scores + argsort);
  - dense search: faiss (flat below the exact threshold, HNSW above) vs brute-force numpy;
  - recall@5 of the approximate index against exact search.
Corpus vectors are real MiniLM embeddings, computed once and cached under runs/.bench/ (embedding
100k texts takes minutes on 2 cores); every *query* is embedded with MiniLM inside the timed step.

    .venv/bin/python bench/retrieval.py            # 10k and 100k, writes docs/benchmarks.md
    .venv/bin/python bench/retrieval.py --sizes 10000 --no-write
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi

from lbi.config import Config
from lbi.embed.base import Embedder, make_embedder
from lbi.retrieval.dense import DenseIndex
from lbi.retrieval.examples import build_example_index, example_item
from lbi.retrieval.lexical import tokenize, top_k
from lbi.types import Example, Step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine, write_section

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / ".bench"
HEADING = "Retrieval"
K = 5


def _words(text: str) -> list[str]:
    return text.split()


TABLES = _words(
    "singer concert stadium employee department course student teacher flight airport airline car_maker model order customer product invoice track album artist playlist movie review city country club match player team"
)
COLUMNS = _words(
    "id name age country city capacity year salary budget title price rating count height weight date status code type genre duration score rank population area"
)
NAMES = _words("Joe Ana Li Omar Sara Timo Ivan Mia Raj Emma Noah Zoe Kofi Yuki Lena Paul")
PLACES = _words("France Peru Japan Kenya Canada Brazil Norway Chile Egypt India Spain Italy")
AGGS = [
    ("average", "avg"),
    ("maximum", "max"),
    ("minimum", "min"),
    ("total", "sum"),
    ("number of", "count"),
]
VERBS = ["Find", "List", "Show", "Return", "What is", "Give me", "Count", "Which"]
ASKS = ["I need the", "look up the", "how to get the", "query for the", "example computing the"]


def _value(rng: random.Random, column: str) -> str:
    if column in ("name", "title"):
        return rng.choice(NAMES)
    if column in ("country", "city"):
        return rng.choice(PLACES)
    return str(rng.randint(1, 5000))


def _schema(rng: random.Random, db: int) -> dict[str, list[str]]:
    """Database `db`'s tables, the same every time (seeded by the db number)."""
    r = random.Random(db)
    return {t: ["id", *r.sample(COLUMNS[1:], 4)] for t in r.sample(TABLES, 4)}


def _table(rng: random.Random, cols: list[str]) -> str:
    rows = [" | ".join(_value(rng, c) for c in cols) for _ in range(rng.randint(2, 8))]
    return "\n".join([" | ".join(cols), *rows])


def _observation(rng: random.Random, db: int) -> str:
    schema = _schema(rng, db)
    if rng.random() < 0.15:  # the start state: the schema, shared by every task on this db
        return f"Database db_{db}. Tables: " + "; ".join(
            f"{t}({', '.join(c)})" for t, c in schema.items()
        )
    table = rng.choice(list(schema))
    return _table(rng, rng.sample(schema[table], rng.randint(2, 5)))


def _task(rng: random.Random, db: int) -> tuple[str, list[str]]:
    table, cols = rng.choice(list(_schema(rng, db).items()))
    (word, fn), col, where = rng.choice(AGGS), rng.choice(cols[1:]), rng.choice(cols[1:])
    val = _value(rng, where)
    text = f"{rng.choice(VERBS)} the {word} {col} of {table} rows whose {where} is {val}"
    sql = f"SELECT {fn}({col}) FROM {table} WHERE {where} = '{val}'"
    return text, [f"SELECT * FROM {table} LIMIT 5", sql][rng.randint(0, 1) :]


def make_example(n: int) -> Example:
    rng = random.Random(n)  # example n is the same in every corpus size
    db = rng.randrange(40)
    instruction, actions = _task(rng, db)
    steps = [
        Step(
            index=s,
            observation=_observation(rng, db),
            action=a,
            next_observation=_observation(rng, db),
        )
        for s, a in enumerate(actions)
    ]
    return Example(
        env="sql",
        instruction=instruction,
        style="task",
        trajectory_id=f"t{n}",
        task_id=f"k{n}",
        i=0,
        j=len(steps) - 1,
        policy="bench",
        steps=steps,
    )


def make_queries(q: int) -> list[tuple[str, str]]:
    """(observation, model query) pairs from a seed range the corpus never uses."""
    out = []
    for n in range(q):
        rng = random.Random(10**9 + n)
        db = rng.randrange(40)
        text, _ = _task(rng, db)
        out.append((_observation(rng, db), f"{rng.choice(ASKS)} {text.split(' the ', 1)[1]}"))
    return out


class CachedEmbedder:
    """MiniLM, with the corpus vectors read from an .npy cache; anything else goes to MiniLM."""

    def __init__(self, real: Embedder, texts: list[str]) -> None:
        self.real, self.name, self.dim = real, real.name, real.dim
        key = hashlib.sha1("\x00".join(texts).encode()).hexdigest()[:16]
        path = CACHE / f"retrieval-{real.name}-{len(texts)}-{key}.npy"
        if path.exists():
            matrix = np.load(path)
        else:
            print(
                f"embedding {len(texts)} corpus texts with {real.name} (cached in {path}) ...",
                flush=True,
            )
            t = time.perf_counter()
            matrix = real.embed(texts)
            print(f"  {len(texts) / (time.perf_counter() - t):.0f} texts/s", flush=True)
            CACHE.mkdir(parents=True, exist_ok=True)
            np.save(path, matrix)
        self.rows = {t: i for i, t in enumerate(texts)}
        self.matrix = matrix

    def embed(self, texts: list[str]) -> np.ndarray:
        if all(t in self.rows for t in texts):
            return self.matrix[[self.rows[t] for t in texts]]
        return self.real.embed(texts)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def latency(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """(p50, p99) in milliseconds over n calls, after one warm-up call."""
    fn(0)
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    times.sort()
    return 1000 * times[len(times) // 2], 1000 * times[min(len(times) - 1, int(len(times) * 0.99))]


def recall_at_k(dense: DenseIndex, matrix: np.ndarray, vec: np.ndarray) -> float:
    """Share of the index's top k that belong to the exact top k; ties with the exact k-th score
    count as found (the synthetic corpus repeats some dense texts, so ids alone would undercount)."""
    exact = matrix @ vec
    kth = exact[top_k(exact, K)[-1]]
    found = [p for p, _ in dense.search(vec, K, set())]
    return sum(exact[p] >= kth - 1e-6 for p in found) / K


def bench_size(
    n: int,
    examples: list[Example],
    cached: CachedEmbedder,
    queries: list[tuple[str, str]],
    n_slow: int,
) -> dict[str, Any]:
    config = Config()
    r: dict[str, Any] = {"n": n}
    corpus = examples[:n]
    t = time.perf_counter()
    index = build_example_index(corpus, cached, config)  # vectors come from the cache
    r["build_s"] = time.perf_counter() - t
    r["approximate"] = index.text.dense.approximate
    r["bm25s_rebuild_s"] = timed(index.text.lexical.rebuild)
    tokens = [tokenize(example_item(e)[1]) for e in corpus]
    bm25_okapi: list[BM25Okapi] = []
    r["rank_bm25_build_s"] = timed(lambda: bm25_okapi.append(BM25Okapi(tokens)))
    okapi = bm25_okapi[0]
    real = cached.real
    vecs = real.embed([q for _, q in queries])
    matrix = index.text.dense.vectors()

    okapi_results: dict[int, np.ndarray] = {}

    def okapi_top(i: int) -> np.ndarray:
        scores = okapi.get_scores(sorted(set(tokenize(queries[i][0]))))
        okapi_results[i] = np.argsort(scores)[::-1][:K]
        return okapi_results[i]

    def numpy_top(i: int) -> np.ndarray:
        return top_k(matrix @ vecs[i], K)

    def both(i: int) -> None:
        chosen = index.search_lexical(queries[i][0], K)
        index.search_dense(queries[i][1], K, exclude={c for c, _ in chosen})

    q = len(queries)
    r["observation"] = latency(lambda i: index.search_lexical(queries[i][0], K), q)
    r["bm25s_only"] = latency(lambda i: top_k(index.text.lexical.scores(queries[i][0]), K), q)
    r["rank_bm25"] = latency(okapi_top, min(q, n_slow))
    r["embed_query"] = latency(lambda i: real.embed([queries[i][1]]), q)
    r["dense_vec"] = latency(lambda i: index.text.search_dense_vec(vecs[i], K), q)
    r["numpy_dense"] = latency(numpy_top, q)
    r["model"] = latency(lambda i: index.search_dense(queries[i][1], K), q)
    r["both"] = latency(both, q)
    # Do bm25s and rank-bm25 agree? (bm25s' default IDF is Lucene's, rank-bm25's is Okapi's.)
    agree = [
        len(
            {p for p, _ in index.text.lexical.search(queries[j][0], K, set())}
            & set(okapi_results[j].tolist())
        )
        / K
        for j in range(min(q, n_slow))
    ]
    r["bm25_overlap"] = float(np.mean(agree))
    r["recall5"] = float(np.mean([recall_at_k(index.text.dense, matrix, v) for v in vecs]))
    # Incremental add: 100 new examples (vectors embedded beforehand), then the first search pays
    # the lazy BM25 rebuild.
    extra = [make_example(10**8 + j) for j in range(100)]
    cached.rows.update({example_item(e)[2]: len(cached.matrix) + j for j, e in enumerate(extra)})
    cached.matrix = np.vstack([cached.matrix, real.embed([example_item(e)[2] for e in extra])])
    r["add100_s"] = timed(lambda: index.add(extra))
    r["first_search_after_add_s"] = timed(lambda: index.search_lexical(queries[0][0], K))
    folder = CACHE / f"index-{n}"
    r["save_s"] = timed(lambda: index.save(folder))
    r["load_s"] = timed(lambda: type(index).load(folder, cached))
    shutil.rmtree(folder)  # hundreds of MB at 100k; only the timings are wanted
    return r


def render(results: list[dict[str, Any]], where: str, load: str) -> str:
    def ms(key: str, row: dict[str, Any]) -> str:
        p50, p99 = row[key]
        return f"{p50:.2f} / {p99:.2f}"

    lines = [
        where,
        "",
        f"Shared machine: other engineers ran CPU-heavy jobs at the same time ({load}); treat the figures as upper bounds, to be rerun on a quiet machine.",
        "",
    ]
    lines += [
        "Synthetic SQL-like examples (schema listings and result tables as observations, templated instructions and SQL actions; seed = example number). Corpus vectors: real MiniLM embeddings cached under runs/.bench/; every query below is embedded with MiniLM inside the timed step. k = 5. Latencies in ms, p50 / p99.",
        "",
    ]
    lines += [
        "| step | " + " | ".join(f"{r['n']:,}" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    rows = [
        ("observation: lbi (exact + bm25s)", "observation"),
        ("BM25 alone: bm25s scores + top-k (no exact table)", "bm25s_only"),
        ("BM25 alone: rank-bm25 get_scores + argsort", "rank_bm25"),
        ("query embedding (MiniLM, 1 text)", "embed_query"),
        ("dense search, given the vector: faiss", "dense_vec"),
        ("dense search, given the vector: numpy brute force", "numpy_dense"),
        ("model: embed + faiss", "model"),
        ("both: observation, then model excluding those", "both"),
    ]
    lines += [
        f"| {label} | " + " | ".join(ms(key, r) for r in results) + " |" for label, key in rows
    ]
    speed = [r["rank_bm25"][0] / r["bm25s_only"][0] for r in results]
    lines += [
        "| BM25 alone: bm25s speed-up over rank-bm25 (p50) | "
        + " | ".join(f"{s:.0f}x" for s in speed)
        + " |"
    ]
    lines += [
        "| top-5 overlap bm25s vs rank-bm25 (Lucene vs Okapi IDF) | "
        + " | ".join(f"{r['bm25_overlap']:.2f}" for r in results)
        + " |",
        "| dense index | "
        + " | ".join("HNSW" if r["approximate"] else "exact (flat)" for r in results)
        + " |",
        "| dense recall@5 vs exact | " + " | ".join(f"{r['recall5']:.3f}" for r in results) + " |",
        "| build (records -> index, vectors cached), s | "
        + " | ".join(f"{r['build_s']:.1f}" for r in results)
        + " |",
        "| bm25s rebuild alone, s | "
        + " | ".join(f"{r['bm25s_rebuild_s']:.2f}" for r in results)
        + " |",
        "| rank-bm25 build, s | "
        + " | ".join(f"{r['rank_bm25_build_s']:.2f}" for r in results)
        + " |",
        "| add 100 examples (vectors ready), s | "
        + " | ".join(f"{r['add100_s']:.3f}" for r in results)
        + " |",
        "| first lexical search after the add (lazy BM25 rebuild), s | "
        + " | ".join(f"{r['first_search_after_add_s']:.2f}" for r in results)
        + " |",
        "| save / load, s | "
        + " | ".join(f"{r['save_s']:.1f} / {r['load_s']:.1f}" for r in results)
        + " |",
    ]
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    return f"Machine: {machine()}; CPU {cpu}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--slow-queries", type=int, default=20, help="queries for rank-bm25")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load0, where = os.getloadavg()[0], machine_line()
    biggest = max(args.sizes)
    examples = [make_example(n) for n in range(biggest)]
    cached = CachedEmbedder(
        make_embedder("minilm", Config()), [example_item(e)[2] for e in examples]
    )
    queries = make_queries(args.queries)
    results = []
    for n in sorted(args.sizes):
        print(f"size {n:,} ...", flush=True)
        results.append(bench_size(n, examples, cached, queries, args.slow_queries))
    load = f"1-minute load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    body = render(results, where, load)
    print(f"## {HEADING}\n\n{body}")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
