"""The retrieval index: planted examples come back first, exclusion, growth, persistence."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import bm25s
import numpy as np
import pytest

from lbi.config import Config
from lbi.embed.base import Embedder, make_embedder
from lbi.retrieval.errors import RetrievalError
from lbi.retrieval.examples import (
    ExampleIndex,
    RetrievalQuery,
    build_doc_index,
    build_example_index,
    build_trajectory_index,
)
from lbi.retrieval.lexical import EXACT_SCORE, LexicalIndex, tokenize
from lbi.retrieval.text_index import TextIndex
from lbi.types import Doc, Example, Step, Trajectory

WORDS = [
    "singer",
    "concert",
    "stadium",
    "name",
    "age",
    "country",
    "capacity",
    "year",
    "song",
    "album",
    "city",
    "price",
    "title",
]
TASKS = [
    "count the singers from {c}",
    "list every concert held in {y}",
    "find the stadium with the largest capacity in {c}",
    "show the average price of albums released after {y}",
    "which city hosted the most concerts before {y}",
    "give the titles of songs longer than {y} seconds",
]
PLANTED_OBS = "zebra_id | okapi_name\n7 | Quagga Stripe\n9 | Tarpan Dun"
PLANTED_TASK = "delete the duplicate zebra rows keeping the oldest okapi record"


def _example(n: int, instruction: str | None = None, observation: str | None = None) -> Example:
    rng = random.Random(n)
    cols = rng.sample(WORDS, 3)
    rows = [" | ".join(str(rng.randint(1, 999)) for _ in cols) for _ in range(3)]
    obs = observation or "\n".join([" | ".join(cols), *rows])
    task = instruction or rng.choice(TASKS).format(
        c=rng.choice(["France", "Peru", "Japan"]), y=rng.randint(1950, 2020)
    )
    step = Step(
        index=0, observation=obs, action=f"SELECT {cols[0]} FROM t{n}", next_observation="ok"
    )
    return Example(
        env="sql",
        instruction=task,
        style="task",
        trajectory_id=f"t{n}",
        task_id=f"k{n}",
        i=0,
        j=0,
        policy="test",
        steps=[step],
    )


@pytest.fixture(scope="module")
def hash_embedder() -> Embedder:
    return make_embedder("hash", Config())


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    return [_example(n) for n in range(300)] + [_example(999, PLANTED_TASK, PLANTED_OBS)]


@pytest.fixture()
def index(corpus: list[Example], hash_embedder: Embedder) -> ExampleIndex:
    return build_example_index(corpus, hash_embedder, Config())


def test_planted_example_is_first_for_its_own_observation(
    index: ExampleIndex, corpus: list[Example]
) -> None:
    planted = corpus[-1]
    hits = index.search_lexical("ZEBRA_ID | okapi_name\n  7 | quagga stripe\n9 | tarpan dun", 5)
    assert hits[0] == (planted.id, EXACT_SCORE)  # case and whitespace do not matter
    near = index.search_lexical("tarpan dun okapi_name", 5)  # not exact: BM25 must find it
    assert near[0][0] == planted.id and near[0][1] < EXACT_SCORE
    assert index.get(near[0][0]) == planted


def test_planted_example_is_first_for_its_own_instruction_with_minilm(
    corpus: list[Example],
) -> None:
    idx = build_example_index(corpus[-60:], make_embedder("minilm", Config()), Config())
    hits = idx.search_dense(PLANTED_TASK, 3)
    assert hits[0][0] == corpus[-1].id
    assert hits[0][1] > hits[1][1]
    paraphrase = idx.search_dense("remove repeated zebra entries but keep the oldest one", 3)
    assert paraphrase[0][0] == corpus[-1].id


def test_exclude_removes_ids_and_still_fills_k(index: ExampleIndex, corpus: list[Example]) -> None:
    planted = corpus[-1].id
    lexical = index.search_lexical(PLANTED_OBS, 5, exclude={planted})
    assert planted not in {i for i, _ in lexical}
    dense = index.search_dense(PLANTED_TASK, 5)
    assert dense[0][0] == planted
    rest = index.search_dense(PLANTED_TASK, 5, exclude=[planted, "no-such-id"])
    assert len(rest) == 5 and planted not in {i for i, _ in rest}
    assert [s for _, s in rest] == sorted((s for _, s in rest), reverse=True)


def test_retrieve_joins_observation_then_model_hits_without_repeats(
    index: ExampleIndex, corpus: list[Example]
) -> None:
    hits = index.retrieve(RetrievalQuery(observation=PLANTED_OBS, query=PLANTED_TASK, m1=2, m2=3))
    assert [h.source for h in hits] == ["observation"] * 2 + ["model"] * 3
    assert hits[0].record == corpus[-1]
    assert len({h.id for h in hits}) == 5  # the planted one, found by both, appears once
    only_obs = index.retrieve(RetrievalQuery(observation=PLANTED_OBS))
    assert {h.source for h in only_obs} == {"observation"}


def test_incremental_add_skips_known_ids_and_rebuilds_bm25_lazily(
    hash_embedder: Embedder, corpus: list[Example]
) -> None:
    idx = build_example_index(corpus[:50], hash_embedder, Config())
    assert idx.add(corpus[:50]) == 0
    assert idx.add([corpus[-1], corpus[-1]]) == 1 and len(idx) == 51
    assert idx.text.lexical.stale
    assert idx.search_lexical(PLANTED_OBS, 1)[0][0] == corpus[-1].id  # exact table needs no rebuild
    assert idx.search_lexical("quagga okapi_name", 1)[0][0] == corpus[-1].id
    assert not idx.text.lexical.stale
    assert idx.search_dense(PLANTED_TASK, 1)[0][0] == corpus[-1].id


def test_save_load_round_trip(tmp_path: Path, index: ExampleIndex, hash_embedder: Embedder) -> None:
    folder = tmp_path / "idx"
    index.save(folder)
    index.save(folder)  # saving over an existing index replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no scratch folders left
    loaded = ExampleIndex.load(folder, hash_embedder)
    assert len(loaded) == len(index)
    for text in (PLANTED_OBS, "singer age 42", "concert capacity"):
        assert loaded.search_lexical(text, 5) == index.search_lexical(text, 5)
        assert loaded.search_dense(text, 5) == index.search_dense(text, 5)
    some = index.search_dense("count the singers", 1)[0][0]
    assert loaded.get(some) == index.get(some)
    saved = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    loaded.add([_example(5000)])  # a loaded index keeps growing, lexical part included
    assert loaded.search_lexical(_example(5000).steps[0].observation, 1)[0][0] == _example(5000).id
    assert loaded.get(_example(5000).id) == _example(5000) and loaded.get(some) == index.get(some)
    # The saved folder is not written in place (a reader sees the old index or the new one) ...
    assert {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == saved
    # ... and holds no record text outside the records table: observations are not kept twice.
    assert "records.sqlite" in saved and "keys.txt" in saved
    assert not any(PLANTED_OBS.encode() in b for n, b in saved.items() if n != "records.sqlite")
    loaded.save(folder)
    again = ExampleIndex.load(folder, hash_embedder)
    assert len(again) == len(index) + 1 and again.get(_example(5000).id) == _example(5000)
    with pytest.raises(RetrievalError, match="no record"):
        again.get("nope")
    (folder / "records.sqlite").unlink()
    with pytest.raises(RetrievalError, match="rebuild the index"):
        ExampleIndex.load(folder, hash_embedder)


def test_load_refuses_another_embedder(tmp_path: Path, index: ExampleIndex) -> None:
    index.save(tmp_path / "idx")
    with pytest.raises(RetrievalError, match="built with embedder 'hash'"):
        ExampleIndex.load(tmp_path / "idx", make_embedder("minilm", Config()))
    with pytest.raises(RetrievalError, match="dim 256"):
        ExampleIndex.load(tmp_path / "idx", make_embedder("hash:64", Config()))
    with pytest.raises(RetrievalError, match="no readable index"):
        ExampleIndex.load(tmp_path / "missing", make_embedder("hash", Config()))


def test_exact_index_switches_to_hnsw_at_the_threshold(
    tmp_path: Path, hash_embedder: Embedder
) -> None:
    items = [
        (f"id{n}", f"row {n} value {n * 7}", f"task number {n} about {WORDS[n % len(WORDS)]}")
        for n in range(80)
    ]
    idx = TextIndex(hash_embedder, exact_threshold=50)
    idx.add(items[:40])
    assert not idx.dense.approximate
    before = idx.search_dense("task number 3 about age", 3)
    idx.add(items[40:])
    assert idx.dense.approximate and len(idx.dense) == 80
    assert idx.search_dense("task number 3 about age", 3)[0] == before[0]
    for n in (0, 45, 79):  # every item, old or new, is its own nearest neighbour
        vec = hash_embedder.embed([items[n][2]])[0]
        assert idx.search_dense_vec(vec, 1)[0][0] == f"id{n}"
        assert f"id{n}" not in {i for i, _ in idx.search_dense_vec(vec, 5, exclude={f"id{n}"})}
    idx.save(tmp_path / "hnsw")
    assert TextIndex.load(tmp_path / "hnsw", hash_embedder).dense.approximate
    cfg = Config()
    assert (
        TextIndex.from_config(hash_embedder, cfg).dense.exact_threshold
        == cfg.retrieval.exact_threshold
    )


def test_doc_and_trajectory_builders(hash_embedder: Embedder) -> None:
    docs = [
        Doc(env="sql", source="manual", text=t)
        for t in ("SELECT picks rows", "JOIN combines two tables", "GROUP BY aggregates")
    ]
    didx = build_doc_index(docs, hash_embedder, Config())
    assert didx.search_lexical("how does join combine tables", 1)[0][0] == docs[1].id
    assert didx.search_dense("GROUP BY aggregates", 1)[0][0] == docs[2].id
    steps = [
        Step(
            index=0,
            observation="tables: singer",
            action="SELECT count(*) FROM singer",
            next_observation="6",
        )
    ]
    trajs = [
        Trajectory(
            task_id="a", env="sql", instruction="how many singers are there", model="m", steps=steps
        ),
        Trajectory(task_id="b", env="sql", instruction="name every stadium", model="m"),
    ]
    tidx = build_trajectory_index(trajs, hash_embedder, Config())
    assert tidx.search_lexical("tables: singer", 1) == [(trajs[0].id, EXACT_SCORE)]
    assert tidx.search_dense("name every stadium", 1)[0][0] == trajs[1].id
    assert isinstance(tidx.get(trajs[1].id), Trajectory)


def test_edges_and_clear_errors(hash_embedder: Embedder) -> None:
    idx = TextIndex(hash_embedder)
    assert idx.search_lexical("anything", 5) == [] and idx.search_dense("anything", 5) == []
    idx.add([("a", "alpha beta", "alpha beta"), ("b", "gamma", "gamma")])
    assert idx.search_lexical("unrelated words", 5) == []  # no shared word, no hit
    assert len(idx.search_dense("alpha", 10)) == 2  # k larger than the index
    with pytest.raises(RetrievalError, match="dimension 256"):
        idx.search_dense_vec(np.ones(3, dtype=np.float32), 1)
    with pytest.raises(RetrievalError, match="no record"):
        build_doc_index([], hash_embedder, Config()).get("nope")

    class Broken:
        name, dim = "broken", 4

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.zeros((1, 4), dtype=np.float32)

    with pytest.raises(RetrievalError, match="returned shape"):
        TextIndex(Broken()).add([("x", "x", "x"), ("y", "y", "y")])


def test_bm25_matrix_matches_bm25s_own_index() -> None:
    texts = [_example(n).steps[0].observation for n in range(200)] + ["", "age age age singer"]
    lexical = LexicalIndex()
    lexical.add(texts[:120])
    lexical.add(texts[120:])  # built from two adds, compared with one bm25s index() call
    reference = bm25s.BM25()
    reference.index([tokenize(t) for t in texts], show_progress=False)
    for query in ("singer age 42", "capacity | price", texts[7], "age"):
        ids = [
            reference.vocab_dict[w]
            for w in sorted(set(tokenize(query)))
            if w in reference.vocab_dict
        ]
        expected = reference.get_scores_from_ids(ids)
        np.testing.assert_allclose(lexical.scores(query), expected, rtol=1e-5, atol=1e-6)


def test_threads_can_search_while_another_adds(
    hash_embedder: Embedder, corpus: list[Example]
) -> None:
    idx = build_example_index(corpus[:100], hash_embedder, Config())
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for n in range(30):
                idx.search_lexical(corpus[n].steps[0].observation, 5)
                idx.search_dense(corpus[n].instruction, 5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(100, 300, 20):
        idx.add(corpus[start : start + 20])
    for t in threads:
        t.join()
    assert not errors and len(idx) == 300 == len(idx.text.dense) == len(idx.text.lexical)


@pytest.mark.parametrize("threshold", [1000, 5], ids=["exact", "hnsw"])
def test_ties_come_back_in_id_order(hash_embedder: Embedder, threshold: int) -> None:
    """Equal scores are ordered by id, in both searches, for a flat and an HNSW dense index,
    also when the tie straddles the k-th place and whatever the order the items were added in."""
    twins = [f"t{n:02d}" for n in range(12)]
    order = random.Random(7).sample(twins, len(twins))
    idx = TextIndex(hash_embedder, exact_threshold=threshold)
    idx.add([(f"other{n}", f"unrelated row {n}", f"something else {n}") for n in range(6)])
    idx.add([(tid, "same observation text", "same task text") for tid in order])
    assert idx.dense.approximate == (threshold == 5)
    for k in (1, 3, 12):
        assert [i for i, _ in idx.search_lexical("same observation text", k)] == twins[:k]
        assert [i for i, _ in idx.search_lexical("observation text", k)] == twins[:k]
        assert [i for i, _ in idx.search_dense("same task text", k)] == twins[:k]
    hits = idx.search_dense("same task text", 4, exclude={"t00", "t02"})
    assert [i for i, _ in hits] == ["t01", "t03", "t04", "t05"]


def test_thousands_of_twins_give_the_smallest_ids_and_grow_the_index_in_any_order(
    hash_embedder: Embedder,
) -> None:
    """Every task of a site starts on the same page: an exact-match bucket of thousands. The k
    smallest ids come back (after exclusions), also for BM25 ties past the exact ones, and
    still after more twins are added with smaller ids."""
    rng = random.Random(3)
    exact = [f"e{n:05d}" for n in range(3000)]
    near = [f"b{n:05d}" for n in range(3000)]  # equal BM25 scores, distinct texts (same length)
    idx = TextIndex(hash_embedder, exact_threshold=100_000)
    idx.add([(i, "home page of the shop", i) for i in rng.sample(exact, len(exact))])
    idx.add([(i, f"home shop {i}", i) for i in rng.sample(near, len(near))])
    hits = idx.search_lexical("Home  page of the SHOP", 5, exclude={"e00000", "e00003"})
    assert [i for i, _ in hits] == ["e00001", "e00002", "e00004", "e00005", "e00006"]
    past = idx.search_lexical("home page of the shop", 3001, exclude={"e00001"})
    assert [i for i, _ in past[-3:]] == ["e02999", "b00000", "b00001"]
    assert past[-1][1] == past[-2][1] < past[-4][1]  # BM25 twins tie, below the exact ones
    assert [i for i, _ in idx.search_lexical("home shop", 3)] == ["b00000", "b00001", "b00002"]
    idx.add([("a0", "home page of the shop", "a0"), ("a1", "home shop a1", "a1")])
    assert [i for i, _ in idx.search_lexical("home page of the shop", 2)] == ["a0", "e00000"]
    assert idx.search_lexical("home shop", 2)[0][0] == "a1"
