"""The viewer's derived index: one pass over the run at start, into a temporary SQLite file.

The run stores records as JSON blobs, and whether an example was kept is decided in Python
(rules, then the committee: `lbi.pipeline.filter.decide`). Listing 100,000 examples by
"rejected for `natural`" or searching their text cannot scan those blobs per request, so the
viewer computes each decision once, in batches (memory stays flat), and keeps small columns, an
FTS5 table over instructions and actions, and the Table 1 row. The run itself is only read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lbi.pipeline import filter as filt
from lbi.pipeline.synth import table_row
from lbi.types import Verdict
from lbi.view.source import ReadOnlyRun, connect_ro

BATCH = 500
INDEX_FORMAT = 1  # bump when the schema or what goes into it changes (cached indexes rebuild)

_SCHEMA = """
CREATE TABLE docs(id TEXT PRIMARY KEY, seq INT, env TEXT, source TEXT, title TEXT, chars INT);
CREATE TABLE tasks(id TEXT PRIMARY KEY, seq INT, env TEXT, origin TEXT, name TEXT,
  instruction TEXT, doc_id TEXT);
CREATE INDEX tasks_doc ON tasks(doc_id, seq);
CREATE TABLE trajs(id TEXT PRIMARY KEY, seq INT, task_id TEXT, env TEXT, model TEXT,
  variant TEXT, seed INT, sample INT, success INT, n_steps INT, stop_reason TEXT);
CREATE INDEX trajs_task ON trajs(task_id, seq);
CREATE TABLE verdicts(example_id TEXT, judge TEXT, data TEXT);
CREATE TABLE examples(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, env TEXT, style TEXT,
  instruction TEXT, actions TEXT, trajectory_id TEXT, task_id TEXT, i INT, j INT,
  n_steps INT, kept INT, reasons TEXT);
CREATE TABLE failed(seq INT, criterion TEXT, PRIMARY KEY(criterion, seq)) WITHOUT ROWID;
CREATE VIRTUAL TABLE examples_fts USING fts5(instruction, actions, content='examples',
  content_rowid='seq');
CREATE TABLE evals(seq INT, id TEXT, suite TEXT, variant TEXT, task_id TEXT, task_name TEXT,
  model TEXT, seed INT, success INT, reward REAL, steps INT, trajectory_id TEXT);
CREATE INDEX evals_task ON evals(task_id, variant, seed);
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
"""
# Built once their table is filled: one sort each, instead of an index update per row.
_VERDICT_INDEX = "CREATE INDEX verdicts_ex ON verdicts(example_id);"
_EXAMPLE_INDEXES = """
CREATE INDEX examples_traj ON examples(trajectory_id, i, j);
CREATE INDEX examples_kept ON examples(kept, seq);
CREATE INDEX examples_env ON examples(env, seq);
CREATE INDEX examples_len ON examples(n_steps, seq);
"""


def _cols(fields: list[str]) -> str:
    return ", ".join(f"json_extract(data, '$.{f}')" for f in fields)


def _copy(c: sqlite3.Connection, table: str, kind: str, fields: list[str]) -> None:
    c.execute(
        f"INSERT INTO {table} SELECT id, seq, {_cols(fields)} FROM src.records WHERE kind=?",
        (kind,),
    )


def _failed(reasons: list[str]) -> set[str]:
    """Criterion names from decision reasons: `rule:x`, `judge:crit: why`, `judge: no verdict`."""
    out = set()
    for r in reasons:
        head, _, rest = r.partition(":")
        if head == "rule":
            out.add(r)
        elif rest.strip() == "no verdict":
            out.add("no verdict")
        elif head == filt.REPLAY:
            out.add(filt.REPLAY)
        else:
            out.add(rest.split(":", 1)[0].strip() or head)
    return out


def judge_names(run: ReadOnlyRun, seen: list[str]) -> list[str]:
    """The committee as `lbi stats` names it, without opening model doors: a door's name is its
    spec or the spec with what it resolved to (`local` -> `local:file.gguf`), as verdicts show."""
    cfg = run.config
    names = []
    for spec in dict.fromkeys(cfg.synth.judges or [cfg.model, *cfg.extra_models]):
        resolved = [j for j in seen if j == spec or j.startswith(spec + ":")]
        names.append(resolved[0] if resolved else spec)
    return names


class _Step(BaseModel):
    """What the rules and the list read of a step: not the stored requests (`messages`, often
    kilobytes a step), so the start parses a fraction of each example."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    observation: str
    action: str
    next_observation: str
    error: bool = False


class _Example(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    env: str
    style: str
    instruction: str
    trajectory_id: str
    task_id: str
    i: int
    j: int
    steps: tuple[_Step, ...]


def _examples(src: sqlite3.Connection, policy: str) -> Iterator[list[_Example]]:
    cur = src.execute(
        "SELECT data FROM records WHERE kind='example' AND json_extract(data, '$.policy')=? "
        "ORDER BY seq",
        (policy,),
    )
    while rows := cur.fetchmany(BATCH):
        yield [_Example.model_validate_json(r[0]) for r in rows]


def _decide_examples(c: sqlite3.Connection, run: ReadOnlyRun, judges: list[str]) -> tuple[int, int]:
    cfg = run.config.synth
    src = connect_ro(run.store.path)
    raw = kept = 0
    try:
        for batch in _examples(src, cfg.backward_policy):
            marks = ",".join("?" * len(batch))
            verdicts = [
                Verdict.model_validate_json(r[0])
                for r in c.execute(
                    f"SELECT data FROM verdicts WHERE example_id IN ({marks})",
                    [e.id for e in batch],
                )
            ]
            decisions = filt.decide(
                batch,
                verdicts,
                judges,
                cfg.combine,
                cfg.max_window_chars,
                cfg.replay_check,
                cfg.grade_threshold,
            )
            rows, failed = [], []
            for seq, d in enumerate(decisions, start=raw + 1):  # numbered here: one insert a batch
                ex = d.example
                rows.append(
                    (
                        seq,
                        ex.id,
                        ex.env,
                        ex.style,
                        ex.instruction,
                        "\n".join(s.action for s in ex.steps),
                        ex.trajectory_id,
                        ex.task_id,
                        ex.i,
                        ex.j,
                        len(ex.steps),
                        int(d.kept),
                        json.dumps(d.reasons),
                    )
                )
                failed += [(seq, f) for f in sorted(_failed(d.reasons))]
            c.executemany(
                "INSERT INTO examples(seq, id, env, style, instruction, actions, trajectory_id, "
                "task_id, i, j, n_steps, kept, reasons) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            c.executemany("INSERT INTO failed(seq, criterion) VALUES (?,?)", failed)
            raw += len(decisions)
            kept += sum(d.kept for d in decisions)
    finally:
        src.close()
    return raw, kept


def build_index(run: ReadOnlyRun, path: Path) -> dict[str, Any]:
    """Write the derived index to `path` (a new file) and return the run's Table 1 row."""
    c = sqlite3.connect(path, isolation_level=None)
    try:
        c.execute("PRAGMA journal_mode=OFF")
        c.execute("PRAGMA synchronous=OFF")
        c.execute("ATTACH DATABASE ? AS src", (f"{run.store.path.resolve().as_uri()}?mode=ro",))
        c.executescript(_SCHEMA)
        c.execute("BEGIN")
        c.execute(
            f"INSERT INTO docs SELECT id, seq, {_cols(['env', 'source', 'title'])}, "
            "length(json_extract(data, '$.text')) FROM src.records WHERE kind='doc'"
        )
        _copy(c, "tasks", "task", ["env", "origin", "name", "instruction", "doc_id"])
        c.execute(
            "INSERT INTO trajs SELECT id, seq, json_extract(data,'$.task_id'), "
            "json_extract(data,'$.env'), json_extract(data,'$.model'), "
            "json_extract(data,'$.variant'), json_extract(data,'$.seed'), "
            "json_extract(data,'$.sample'), json_extract(data,'$.success'), "
            "json_array_length(data,'$.steps'), json_extract(data,'$.stop_reason') "
            "FROM src.records WHERE kind='trajectory'"
        )
        c.execute(
            "INSERT INTO verdicts SELECT json_extract(data,'$.example_id'), "
            "json_extract(data,'$.judge'), data FROM src.records WHERE kind='verdict' ORDER BY seq"
        )
        c.execute(_VERDICT_INDEX)
        ev = [
            "suite",
            "variant",
            "task_id",
            "task_name",
            "model",
            "seed",
            "success",
            "reward",
            "steps",
            "trajectory_id",
        ]
        c.execute(
            f"INSERT INTO evals SELECT seq, id, {_cols(ev)} FROM src.records "
            "WHERE kind='eval_result'"
        )
        seen = [
            r[0] for r in c.execute("SELECT DISTINCT judge FROM verdicts") if r[0] != filt.REPLAY
        ]
        judges = judge_names(run, sorted(seen))
        raw, kept = _decide_examples(c, run, judges)
        for statement in _EXAMPLE_INDEXES.strip().splitlines():
            c.execute(statement)
        c.execute("INSERT INTO examples_fts(examples_fts) VALUES ('rebuild')")
        row = table_row(run, raw, kept, judges)
        c.execute("INSERT INTO meta VALUES ('stats', ?)", (json.dumps(row),))
        c.execute("COMMIT")
        c.execute("DETACH DATABASE src")
        c.execute("ANALYZE")
    finally:
        c.close()
    return row
