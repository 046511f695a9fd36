"""Is the benchmark in the training/retrieval data? Word n-gram overlap, checked before evaluating.

Learn-by-interact synthesises tasks from an environment's docs; for SQL the "docs" can be the very
databases the benchmark asks about, so a synthesised instruction may restate a benchmark question.
Retrieval would then hand the agent the answer and the delta would measure leakage, not learning.
We use the standard check (GPT-3/PaLM-style 8-gram overlap on normalised text): for each benchmark
instruction, the largest fraction of its n-grams found in one data instruction, and whether the
whole normalised instruction appears verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from statistics import fmean

from pydantic import BaseModel

from lbi.config import ConfigError
from lbi.identity import identity_matches
from lbi.types import Example, Task

DEFAULT_N = 8
DEFAULT_THRESHOLD = 0.5

_NON_WORD = re.compile(r"[^\w]+")


class ContaminationError(ConfigError):
    """Benchmark instructions found in the synthesised data; rerun with allow to evaluate anyway.
    (A ConfigError, so the CLI prints it as one line and exits 2.)"""


def require_benchmark(tasks: Sequence[Task], suite: str) -> None:
    """Only benchmark tasks are evaluated: a suite that hands back a synthesized or user task
    would score the method on its own training data. No setting lifts this."""
    for task in tasks:
        if task.origin != "benchmark":
            raise ContaminationError(
                f"suite {suite} returned task {task.name or task.id} whose origin is "
                f"{task.origin!r}, not 'benchmark': lbi eval only evaluates benchmark tasks"
            )


def normalize(text: str) -> str:
    """Casefold, NFKC, punctuation to spaces, whitespace collapsed: 'What's  the Count?' ->
    'what s the count'. Overlap should not hinge on quoting or capitalisation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).replace("_", " ").split())


def ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class TaskOverlap(BaseModel):
    """The closest data instruction to one benchmark task."""

    task_id: str
    task_name: str
    n: int  # the n-gram size used: min(n, words in the benchmark instruction)
    max_overlap: float  # share of the task's n-grams present in the best-matching data item
    match_id: str | None
    match_kind: str | None  # "example" or "task"
    exact: bool  # the whole normalised instruction appears verbatim in some data item
    # The task's identity (scenario id, gold answer, task + seed) found in a data item.
    identity: str | None = None

    def offending(self, threshold: float) -> bool:
        return self.exact or self.max_overlap >= threshold or self.identity is not None


class ContaminationReport(BaseModel):
    n: int
    threshold: float
    n_benchmark: int
    n_data: int
    tasks: list[TaskOverlap]
    n_flagged: int
    n_exact: int
    max_overlap: float
    mean_overlap: float

    @property
    def flagged(self) -> list[TaskOverlap]:
        return [t for t in self.tasks if t.offending(self.threshold)]

    def line(self) -> str:
        """One sentence for the report."""
        worst = max(self.tasks, key=lambda t: t.max_overlap, default=None)
        where = (
            f" (worst: {worst.task_name or worst.task_id}, {worst.max_overlap:.0%})"
            if worst
            else ""
        )
        return (
            f"{self.n_flagged}/{self.n_benchmark} benchmark tasks overlap the data "
            f"(>= {self.threshold:.0%} of {self.n}-grams or verbatim; {self.n_exact} verbatim) "
            f"across {self.n_data} data instructions; max {self.max_overlap:.0%}, mean {self.mean_overlap:.0%}{where}."
        )


def _data_items(data: Iterable[Example | Task]) -> list[tuple[str, str, list[str]]]:
    """(id, kind, words); benchmark-origin tasks in the store are the benchmark itself, skipped."""
    items = []
    for d in data:
        if isinstance(d, Task) and d.origin == "benchmark":
            continue
        kind = "example" if isinstance(d, Example) else "task"
        items.append((d.id, kind, normalize(d.instruction).split()))
    return items


def overlap_report(
    benchmark: Sequence[Task],
    data: Iterable[Example | Task],
    n: int = DEFAULT_N,
    threshold: float = DEFAULT_THRESHOLD,
    seeds: Sequence[int] = (0,),
) -> ContaminationReport:
    """Per benchmark task, its best match in the data. An inverted index of n-grams keeps this
    linear in the data size; a benchmark instruction shorter than n words uses its own length."""
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    data_list = list(data)
    items = _data_items(data_list)
    indexes: dict[int, dict[tuple[str, ...], set[int]]] = {}

    def index(size: int) -> dict[tuple[str, ...], set[int]]:
        if size not in indexes:
            inv: dict[tuple[str, ...], set[int]] = defaultdict(set)
            for pos, (_, _, words) in enumerate(items):
                for g in ngrams(words, size):
                    inv[g].add(pos)
            indexes[size] = inv
        return indexes[size]

    padded = [f" {' '.join(words)} " for _, _, words in items]
    rows: list[TaskOverlap] = []
    for task in benchmark:
        words = normalize(task.instruction).split()
        size = max(1, min(n, len(words)))
        grams = ngrams(words, size)
        inv = index(size)
        hits: Counter[int] = Counter()
        for g in grams:
            hits.update(inv.get(g, ()))
        best, count = hits.most_common(1)[0] if hits else (None, 0)
        needle = f" {' '.join(words)} "
        exact_pos = next((i for i, hay in enumerate(padded) if words and needle in hay), None)
        if exact_pos is not None:
            best, count = exact_pos, len(grams)
        rows.append(
            TaskOverlap(
                task_id=task.id,
                task_name=task.name,
                n=size,
                max_overlap=count / len(grams) if grams else 0.0,
                match_id=items[best][0] if best is not None else None,
                match_kind=items[best][1] if best is not None else None,
                exact=exact_pos is not None,
            )
        )
    same = identity_matches(benchmark, data_list, seeds)
    for row in rows:
        if row.task_id in same:
            row.match_id, row.match_kind, row.identity = same[row.task_id]
    return ContaminationReport(
        n=n,
        threshold=threshold,
        n_benchmark=len(rows),
        n_data=len(items),
        tasks=rows,
        n_flagged=sum(r.offending(threshold) for r in rows),
        n_exact=sum(r.exact for r in rows),
        max_overlap=max((r.max_overlap for r in rows), default=0.0),
        mean_overlap=fmean(r.max_overlap for r in rows) if rows else 0.0,
    )


def check_contamination(
    benchmark: Sequence[Task],
    data: Iterable[Example | Task],
    *,
    allow: bool = False,
    n: int = DEFAULT_N,
    threshold: float = DEFAULT_THRESHOLD,
    seeds: Sequence[int] = (0,),
) -> ContaminationReport:
    """The harness calls this before evaluating; it refuses (ContaminationError) unless allow."""
    report = overlap_report(benchmark, data, n=n, threshold=threshold, seeds=seeds)
    flagged = report.flagged
    if flagged and not allow:
        first = flagged[0]
        how = (
            f"its {first.identity}"
            if first.identity
            else "verbatim"
            if first.exact
            else f"{first.max_overlap:.0%} of its {first.n}-grams"
        )
        raise ContaminationError(
            f"benchmark task {first.task_name or first.task_id} ({first.task_id}) appears in the data "
            f"({how}, {first.match_kind} {first.match_id}); {len(flagged)} task(s) flagged; "
            "set eval.allow_contamination=true to evaluate anyway"
        )
    return report
