"""What each page shows, read from the derived index (lists, filters, search) and the run
(whole records by id). Every connection is read-only; every query is parameterised."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbi.types import Doc, Example, Step, Task, Trajectory, Verdict
from lbi.view.source import connect_ro

PAGE = 50
_EXAMPLES_HEAD = "Worked examples from this environment that may help:"


@dataclass
class Filters:
    kept: str = ""  # "", "kept", "rejected"
    criterion: str = ""
    env: str = ""
    min_steps: int | None = None
    max_steps: int | None = None
    q: str = ""

    def where(self) -> tuple[str, list[Any]]:
        sql: list[str] = ["1=1"]
        args: list[Any] = []
        if self.kept in ("kept", "rejected"):
            sql.append("e.kept=?")
            args.append(int(self.kept == "kept"))
        if self.criterion:
            sql.append("e.seq IN (SELECT seq FROM failed WHERE criterion=?)")
            args.append(self.criterion)
        if self.env:
            sql.append("e.env=?")
            args.append(self.env)
        if self.min_steps is not None:
            sql.append("e.n_steps>=?")
            args.append(self.min_steps)
        if self.max_steps is not None:
            sql.append("e.n_steps<=?")
            args.append(self.max_steps)
        if self.q.strip():
            sql.append("e.seq IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?)")
            args.append(fts_query(self.q))
        return " AND ".join(sql), args


def fts_query(text: str) -> str:
    """Every word must occur (each quoted: FTS5 operators typed by a user are just words)."""
    words = re.findall(r"\w+", text)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words) or '""'


def retrieved_examples(step: Step) -> list[str]:
    """The worked examples in the prompt the agent was sent at this step, in prompt order, cut
    from it (`prompts/act_user.j2`: each step's new examples, `--- example N ---` blocks, sit in
    HISTORY where they were first shown, this step's before `OBSERVATION:`; runs recorded before
    that had one block, first before `OBJECTIVE:` and later before `OBSERVATION:`)."""
    for m in step.messages:
        text = m.get("content")
        if m.get("role") == "user" and isinstance(text, str) and _EXAMPLES_HEAD in text:
            out: list[str] = []
            for block in text.split(_EXAMPLES_HEAD)[1:]:
                block = block.rsplit("\nOBSERVATION:", 1)[0].split("\nOBJECTIVE:", 1)[0]
                block = _HISTORY_ENTRY.split(block, 1)[0]
                parts = re.split(r"^--- example \d+ ---$", block, flags=re.M)
                out += [p.strip() for p in parts if p.strip()]
            return out
    return []


_HISTORY_ENTRY = re.compile(r"\n\n\d+\. ACTION: ")


class RunView:
    """Reads for the pages of one run: `index` is the derived file, `db` the run's store."""

    def __init__(self, name: str, folder: Path, db: Path, index: Path) -> None:
        self.name, self.folder, self.db, self.index = name, folder, db, index

    @contextmanager
    def _conn(self, path: Path) -> Iterator[sqlite3.Connection]:
        c = connect_ro(path)
        c.row_factory = sqlite3.Row
        try:
            yield c
        finally:
            c.close()

    def _rows(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._conn(self.index) as c:
            return [dict(r) for r in c.execute(sql, args)]

    def _record(self, kind: str, rid: str) -> str | None:
        with self._conn(self.db) as c:
            row = c.execute(
                "SELECT data FROM records WHERE kind=? AND id=?", (kind, rid)
            ).fetchone()
        return row[0] if row else None

    # -- overview -------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        stats = json.loads(self._rows("SELECT value FROM meta WHERE key='stats'")[0]["value"])
        counts = {
            t: self._rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
            for t in ("docs", "tasks", "trajs", "examples", "verdicts", "evals")
        }
        return {"stats": stats, "counts": counts, "report": self.report_path() is not None}

    def report_path(self) -> Path | None:
        path = self.folder / "report" / "report.html"
        return path if path.is_file() else None

    # -- docs -> tasks -> trajectories ----------------------------------------------------------
    def docs(self, page: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT d.*, (SELECT COUNT(*) FROM tasks t WHERE t.doc_id=d.id) AS n_tasks "
            "FROM docs d ORDER BY seq LIMIT ? OFFSET ?",
            (PAGE, (page - 1) * PAGE),
        )

    def doc(self, rid: str) -> dict[str, Any] | None:
        data = self._record(Doc.kind, rid)
        tasks = self._rows("SELECT * FROM tasks WHERE doc_id=? ORDER BY seq", (rid,))
        if data is None and not tasks:
            return None
        return {"doc": Doc.model_validate_json(data) if data else None, "id": rid, "tasks": tasks}

    def tasks(self, origin: str, page: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT t.*, (SELECT COUNT(*) FROM trajs r WHERE r.task_id=t.id) AS n_trajs "
            "FROM tasks t WHERE (?='' OR origin=?) ORDER BY seq LIMIT ? OFFSET ?",
            (origin, origin, PAGE, (page - 1) * PAGE),
        )

    def task(self, rid: str) -> dict[str, Any] | None:
        data = self._record(Task.kind, rid)
        if data is None:
            return None
        return {
            "task": Task.model_validate_json(data),
            "trajs": self._rows("SELECT * FROM trajs WHERE task_id=? ORDER BY seq", (rid,)),
            "evals": self._rows("SELECT * FROM evals WHERE task_id=? ORDER BY seq", (rid,)),
        }

    def trajectory(self, rid: str) -> dict[str, Any] | None:
        data = self._record(Trajectory.kind, rid)
        if data is None:
            return None
        traj = Trajectory.model_validate_json(data)
        if not traj.steps:  # an episode still running: its steps are stored as they happen
            with self._conn(self.db) as c:
                rows = c.execute(
                    "SELECT data FROM steps WHERE trajectory_id=? ORDER BY idx", (rid,)
                ).fetchall()
            traj.steps = [Step.model_validate_json(r[0]) for r in rows]
        windows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for e in self._rows(
            "SELECT id, style, instruction, i, j, kept FROM examples WHERE trajectory_id=? "
            "ORDER BY i, j, style",
            (rid,),
        ):
            windows.setdefault((e["i"], e["j"]), []).append(e)
        return {"traj": traj, "windows": windows}

    def window(self, rid: str, i: int, j: int) -> dict[str, Any] | None:
        found = self.trajectory(rid)
        if found is None:
            return None
        labels = []
        for e in self._rows(
            "SELECT * FROM examples WHERE trajectory_id=? AND i=? AND j=? ORDER BY style, id",
            (rid, i, j),
        ):
            verdicts = [
                Verdict.model_validate_json(v["data"])
                for v in self._rows(
                    "SELECT data FROM verdicts WHERE example_id=? ORDER BY judge", (e["id"],)
                )
            ]
            labels.append({**e, "reasons": json.loads(e["reasons"]), "verdicts": verdicts})
        steps = [s for s in found["traj"].steps if i <= s.index <= j]
        return {"traj": found["traj"], "i": i, "j": j, "steps": steps, "labels": labels}

    def example(self, rid: str) -> Example | None:
        data = self._record(Example.kind, rid)
        return Example.model_validate_json(data) if data else None

    # -- examples: filters and search --------------------------------------------------------
    def examples(self, f: Filters, page: int) -> dict[str, Any]:
        where, args = f.where()
        total = self._rows(f"SELECT COUNT(*) AS n FROM examples e WHERE {where}", args)[0]["n"]
        rows = self._rows(
            "SELECT e.id, e.env, e.style, e.instruction, e.trajectory_id, e.i, e.j, e.n_steps, "
            f"e.kept, e.reasons FROM examples e WHERE {where} ORDER BY e.seq LIMIT ? OFFSET ?",
            [*args, PAGE, (page - 1) * PAGE],
        )
        for r in rows:
            r["reasons"] = json.loads(r["reasons"])
        return {"rows": rows, "total": total, "pages": max(1, -(-total // PAGE))}

    def facets(self) -> dict[str, list[str]]:
        return {
            "criteria": [
                r["criterion"]
                for r in self._rows("SELECT DISTINCT criterion FROM failed ORDER BY criterion")
            ],
            "envs": [
                r["env"] for r in self._rows("SELECT DISTINCT env FROM examples ORDER BY env")
            ],
        }

    # -- evaluation ------------------------------------------------------------------------------
    def eval_grid(self) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM evals ORDER BY seq")
        tasks: dict[str, str] = {}
        variants: dict[str, None] = {}
        cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            tasks.setdefault(r["task_id"], r["task_name"] or r["task_id"])
            variants.setdefault(r["variant"], None)
            cells.setdefault((r["task_id"], r["variant"]), []).append(r)
        for got in cells.values():
            got.sort(key=lambda r: (r["seed"], r["id"]))
        return {"tasks": tasks, "variants": list(variants), "cells": cells}

    def episodes(self, task_id: str, variants: list[str], seed: int) -> dict[str, Any]:
        out = []
        for v in variants:
            hit = self._rows(
                "SELECT * FROM evals WHERE task_id=? AND variant=? AND seed=? ORDER BY id LIMIT 1",
                (task_id, v, seed),
            )
            found = self.trajectory(hit[0]["trajectory_id"]) if hit else None
            traj = found["traj"] if found else None
            steps = [(s, retrieved_examples(s)) for s in traj.steps] if traj else []
            out.append(
                {"variant": v, "result": hit[0] if hit else None, "traj": traj, "steps": steps}
            )
        seeds = self._rows(
            "SELECT DISTINCT seed FROM evals WHERE task_id=? ORDER BY seed", (task_id,)
        )
        return {"columns": out, "seeds": [r["seed"] for r in seeds]}
