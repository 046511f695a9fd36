"""Stage 1 — task synthesis (self-instruct): doc chunks -> tasks, plus an exploration mode.

One call per chunk asks for k diverse, concrete tasks as structured output. Proposals are
stored as they arrive; near-duplicates are dropped afterwards by a deterministic pass (normalised
text, then embedding similarity), so the kept set never depends on completion order.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from lbi.envs.calls import env_call
from lbi.executor import make_executor
from lbi.identity import training_setup
from lbi.models.base import ChatRequest
from lbi.pipeline.chunking import chunk_docs
from lbi.pipeline.failures import StageFailures
from lbi.pipeline.structured import ask_json
from lbi.progress import stage_progress
from lbi.prompts import render
from lbi.tokens import clip_middle
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import SynthConfig
    from lbi.envs.base import Environment
    from lbi.run import RunContext


def tasks_schema(k: int) -> dict[str, Any]:
    """Bounded on purpose: a model that loops (small ones do) still closes the JSON in budget."""
    return {
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": k,
                "items": {
                    "type": "object",
                    "properties": {
                        "instruction": {"type": "string", "minLength": 8, "maxLength": MAX_TEXT}
                    },
                    "required": ["instruction"],
                },
            }
        },
        "required": ["tasks"],
    }


MAX_TEXT = 240  # characters in one instruction or label: plenty for a real one


STAGE = "tasks"


def spread(chunks: list[Doc], n: int | None) -> list[Doc]:
    """At most n chunks taken evenly across the documentation (not just its first pages)."""
    if n is None or n >= len(chunks):
        return chunks
    step = len(chunks) / max(1, n)
    return [chunks[int(k * step)] for k in range(n)]


def parse_tasks(value: Any, k: int) -> list[str]:
    """The instructions from a `{"tasks": [...]}` answer: stripped, non-empty, at most k."""
    items = value.get("tasks", []) if isinstance(value, dict) else []
    out = []
    for item in items:
        text = item.get("instruction") if isinstance(item, dict) else item
        if isinstance(text, str) and text.strip():
            out.append(" ".join(text.split()))
    return out[:k]


def _request(kind: str, prompt: str, k: int, meta: dict[str, Any]) -> ChatRequest:
    return ChatRequest(
        messages=[
            {
                "role": "system",
                "content": "You design realistic practice tasks. Reply with JSON only.",
            },
            {"role": "user", "content": prompt},
        ],
        max_tokens=200 * k + 60,
        kind=kind,
        meta={"k": k, **meta},
    )


def doc_chunks(env: Environment, cfg: SynthConfig) -> list[Doc]:
    """The doc chunks synthesis writes tasks from: the env's docs cut to `chunk_tokens`, at most
    `max_chunks` of them spread across the documentation."""
    return spread(chunk_docs(env.docs(), cfg.chunk_tokens), cfg.max_chunks)


async def propose_from_docs(ctx: RunContext, env: Environment) -> list[Doc]:
    cfg = ctx.config.synth
    chunks = doc_chunks(env, cfg)
    ctx.store.set_meta("chunks", [c.id for c in chunks])
    done = ctx.store.marked(STAGE)
    todo = [c for c in chunks if c.id not in done]
    door = ctx.door(ctx.config.role("tasks"))
    space = env.action_space()
    failures = StageFailures(ctx, STAGE, len(chunks), "doc chunks")

    async def one(chunk: Doc) -> list[Task]:
        def build(keep: float) -> ChatRequest:
            """The request with `keep` of the chunk's text (cut in the middle to fit)."""
            prompt = render(
                "tasks",
                env=env.name,
                action_description=space.description,
                title=chunk.title,
                text=chunk.text
                if keep >= 1
                else clip_middle(chunk.text, int(len(chunk.text) * keep)),
                k=cfg.tasks_per_chunk,
                context_hint="",
            )
            return _request("tasks", prompt, cfg.tasks_per_chunk, {"doc_title": chunk.title})

        value = await ask_json(
            door,
            build,
            tasks_schema(cfg.tasks_per_chunk),
            STAGE,
            failures,
            chunk.id,
            f"chunk {chunk.title!r}",
        )
        return [
            Task(env=env.name, instruction=ins, setup=chunk.setup, origin="docs", doc_id=chunk.id)
            for ins in parse_tasks(value, cfg.tasks_per_chunk)
        ]

    with stage_progress(
        "tasks from docs", len(chunks), ctx.accountant, done=len(chunks) - len(todo)
    ) as advance:
        async for chunk, tasks in make_executor(ctx.config.executor).map(
            one, todo, ctx.config.door.concurrency
        ):
            # A failed chunk is stored as a failure, not marked: the next run asks again.
            failed, drop = failures.outcome(chunk.id)
            marks = [] if failed else [(STAGE, chunk.id)]
            ctx.commit([chunk, *tasks, *failed], marks=marks, drop=drop)
            advance(failed=len(failed))
            failures.check()
    failures.report()
    return chunks


async def propose_from_exploration(ctx: RunContext, make_env: Any) -> None:
    """Tasks from what the agent sees when it tries the documented example actions, with no docs."""
    cfg = ctx.config.synth
    env = make_env()
    try:
        space = env.action_space()
        # Starts keep a benchmark task's resources (its database), never its identity (its
        # scenario id or gold): exploration is practice, not a look at the test.
        starts = {
            repr(sorted(training_setup(t.setup).items())): t.model_copy(
                update={"setup": training_setup(t.setup), "gold": {}, "reference": []}
            )
            for t in env.sample_tasks()
        }
        todo = [
            t
            for key, t in sorted(starts.items())
            if f"explore:{key}" not in ctx.store.marked(STAGE)
        ]
        failures = StageFailures(ctx, STAGE, len(starts), "explorations")
        with stage_progress("tasks from exploration", len(todo), ctx.accountant) as advance:
            for start in todo:
                probe = Task(
                    env=env.name, instruction="Explore.", setup=start.setup, origin="explore"
                )
                obs, _ = await env_call(env, env.reset, probe, ctx.config.synth.seed)
                seen = [obs]
                for action in space.examples[:4]:
                    o, *_ = await env_call(env, env.step, action)
                    seen.append(f"after `{action}`:\n{o}")

                def build(keep: float, seen: list[str] = seen) -> ChatRequest:
                    """The request with each observation cut to `keep` of 1,500 characters."""
                    prompt = render(
                        "explore",
                        env=env.name,
                        action_description=space.description,
                        observations=[s[: int(1500 * keep)] for s in seen],
                        k=cfg.explore_tasks,
                    )
                    meta = {"doc_title": "exploration"}
                    return _request("explore", prompt, cfg.explore_tasks, meta)

                unit = f"explore:{sorted(start.setup.items())!r}"
                value = await ask_json(
                    ctx.door(ctx.config.role("tasks")),
                    build,
                    tasks_schema(cfg.explore_tasks),
                    STAGE,
                    failures,
                    unit,
                    f"exploration of {start.setup}",
                )
                tasks = [
                    Task(env=env.name, instruction=i, setup=start.setup, origin="explore")
                    for i in parse_tasks(value, cfg.explore_tasks)
                ]
                failed, drop = failures.outcome(unit)
                ctx.commit([*tasks, *failed], marks=[] if failed else [(STAGE, unit)], drop=drop)
                advance(failed=len(failed))
                failures.check()
        failures.report()
    finally:
        env.close()


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


DEDUP_BLOCK = 1024


def select_tasks(tasks: list[Task], embed: Any, threshold: float) -> list[Task]:
    """Drop near-duplicates deterministically: same normalised text, or cosine >= threshold
    with a task kept before it (in the sorted order). The similarities come a block of tasks at a
    time from one matrix product against all the tasks before the block (the old per-task loop
    copied the kept matrix for every task: 22 s at 4,887 tasks, quadratic in copies)."""
    ordered = sorted(tasks, key=lambda t: (t.origin, t.doc_id or "", t.instruction))
    kept: list[Task] = []
    seen: set[str] = set()
    for t in ordered:
        key = _norm(t.instruction) + repr(sorted(t.setup.items()))
        if key not in seen:
            seen.add(key)
            kept.append(t)
    if not kept or threshold >= 1.0:
        return kept
    vecs = np.asarray(embed([t.instruction for t in kept]), dtype=np.float32)
    out = np.zeros(len(kept), dtype=bool)  # kept after the cosine pass
    for lo in range(0, len(kept), DEDUP_BLOCK):
        hi = min(lo + DEDUP_BLOCK, len(kept))
        sims = vecs[lo:hi] @ vecs[:hi].T  # each task of the block against every one before it
        for n in range(lo, hi):
            row = sims[n - lo, :n]
            out[n] = not (out[:n] & (row >= threshold)).any()
    return [t for t, keep in zip(kept, out, strict=True) if keep]
