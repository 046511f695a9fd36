"""`ExampleIndex`: a `TextIndex` whose items are records (examples, docs or trajectories).

What goes into each search text, and why:

- Example, lexical = the window's first observation (steps[i].observation). Observation-based
  retrieval asks "which demonstrations *start* from a state like mine?": those are the ones whose
  actions apply from here. Matching later observations in the window would surface examples whose
  first steps are already behind the agent, and concatenating every observation of overlapping
  windows would repeat each observation ~window-length times and dilute BM25's length norm.
- Example, dense = the instruction, then the actions, one a line. The model-based query is the
  LLM saying what it wants to do, which reads like an instruction; the actions add the words of
  the action space (table names, SQL functions, element names) the query may mention.
  Observations stay out: they are long (tables, page trees) and would fill MiniLM's 256-token
  window with state instead of intent; the instruction comes first so truncation cuts actions.
- Doc (the `docs` RAG baseline): both texts are the doc text.
- Trajectory (the `distill` baseline): one item per trajectory, built like an example over the
  whole episode (first observation; task instruction + actions).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from lbi.retrieval.errors import RetrievalError
from lbi.retrieval.persist import atomic_dir
from lbi.retrieval.records import FILE as RECORDS_FILE
from lbi.retrieval.records import RecordTable
from lbi.retrieval.text_index import Item, Scored, TextIndex
from lbi.types import Doc, Example, Record, Step, Trajectory, content_id

if TYPE_CHECKING:
    from lbi.config import Config
    from lbi.embed.base import Embedder


class RetrievalQuery(BaseModel):
    """One agent step's retrieval: the observation it sees, and the LLM's query (if it wrote one)."""

    model_config = ConfigDict(extra="forbid")
    observation: str
    query: str | None = None
    m1: int = 5
    m2: int = 5
    # Record ids never returned: under cross-fitting, the evaluated task's own data.
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hit:
    """One retrieved record, with which of the two searches found it."""

    id: str
    score: float
    source: Literal["observation", "model"]
    record: Record


class Retriever(Protocol):
    def retrieve(self, query: RetrievalQuery) -> list[Hit]: ...


def _dense_text(instruction: str, steps: Sequence[Step]) -> str:
    return "\n".join([instruction, *(s.action for s in steps)])


def example_item(example: Example) -> Item:
    first = example.steps[0].observation if example.steps else ""
    return example.id, first, _dense_text(example.instruction, example.steps)


def doc_item(doc: Doc) -> Item:
    return doc.id, doc.text, doc.text


def trajectory_item(trajectory: Trajectory) -> Item:
    first = trajectory.steps[0].observation if trajectory.steps else ""
    return trajectory.id, first, _dense_text(trajectory.instruction, trajectory.steps)


def _item(record: Record) -> Item:
    if isinstance(record, Example):
        return example_item(record)
    if isinstance(record, Doc):
        return doc_item(record)
    if isinstance(record, Trajectory):
        return trajectory_item(record)
    raise RetrievalError(
        f"cannot index a {type(record).__name__}; expected Example, Doc or Trajectory"
    )


class ExampleIndex:
    """Records searchable by observation and by meaning; searches return ids, `get` the record.

    The records themselves live in a `RecordTable` (SQLite), not in memory; they are added in
    batches, so building from a stream of a million records holds one batch at a time."""

    BATCH = 2000

    def __init__(self, text: TextIndex, records: RecordTable | None = None) -> None:
        self.text = text
        self._records = records if records is not None else RecordTable()

    def __len__(self) -> int:
        return len(self.text)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.text

    def add(self, records: Iterable[Record]) -> int:
        """Index records not yet present (by id); returns how many were new."""
        added = 0
        it = iter(records)
        while batch := list(itertools.islice(it, self.BATCH)):
            fresh = {r.id: r for r in batch if r.id not in self.text}
            added += self.text.add(_item(r) for r in fresh.values())
            self._records.put(fresh.values())
        return added

    def fingerprint(self) -> str:
        """The content id of the records indexed: equal for equal record sets."""
        return content_id("index", *sorted(self.text.ids))

    def get(self, record_id: str) -> Record:
        record = self._records.get(record_id) if record_id in self.text else None
        if record is None:
            raise RetrievalError(f"no record {record_id!r} in this index")
        return record

    def search_lexical(self, observation: str, k: int, exclude: Iterable[str] = ()) -> Scored:
        return self.text.search_lexical(observation, k, exclude)

    def search_dense(self, query: str, k: int, exclude: Iterable[str] = ()) -> Scored:
        return self.text.search_dense(query, k, exclude)

    def retrieve(self, query: RetrievalQuery) -> list[Hit]:
        """The paper's step: top m1 by observation, then top m2 by the query among the rest."""
        hits = []
        if query.m1 > 0:
            hits = [
                Hit(id=i, score=s, source="observation", record=self.get(i))
                for i, s in self.search_lexical(query.observation, query.m1, query.exclude)
            ]
        if query.query and query.m2 > 0:
            chosen = {h.id for h in hits} | query.exclude
            hits += [
                Hit(id=i, score=s, source="model", record=self.get(i))
                for i, s in self.search_dense(query.query, query.m2, exclude=chosen)
            ]
        return hits

    # -- persistence --------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        with atomic_dir(folder) as scratch:
            self.text.write_into(scratch)
            self._records.save_to(scratch / RECORDS_FILE)

    @classmethod
    def load(cls, folder: str | Path, embedder: Embedder) -> ExampleIndex:
        folder = Path(folder)
        text = TextIndex.load(folder, embedder)
        records = RecordTable.open(folder)
        if len(records) != len(text):
            records.close()
            raise RetrievalError(f"index in {folder} is inconsistent: records and ids differ")
        return cls(text, records)


def _build(records: Iterable[Record], embedder: Embedder, config: Config) -> ExampleIndex:
    index = ExampleIndex(TextIndex.from_config(embedder, config))
    index.add(records)
    index.text.lexical.rebuild()  # build BM25 now rather than on the agent's first step
    return index


def build_example_index(
    examples: Iterable[Example], embedder: Embedder, config: Config
) -> ExampleIndex:
    return _build(examples, embedder, config)


def build_doc_index(docs: Iterable[Doc], embedder: Embedder, config: Config) -> ExampleIndex:
    return _build(docs, embedder, config)


def build_trajectory_index(
    trajectories: Iterable[Trajectory], embedder: Embedder, config: Config
) -> ExampleIndex:
    return _build(trajectories, embedder, config)
