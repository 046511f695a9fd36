"""The whole synthesis pipeline, and each stage on its own, over a run's store.

docs -> tasks -> rollouts -> backward construction -> filter -> dataset. Each stage reads what
the previous one stored, skips the work it already finished, and stores its outputs with their
done-marks in one transaction: kill it anywhere and the same command picks up where it stopped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lbi.agents.react import EpisodeSettings
from lbi.envs.base import ActionSpace
from lbi.pipeline import backward
from lbi.pipeline import filter as filt
from lbi.pipeline import tasks as task_stage
from lbi.pipeline.failures import grouped
from lbi.pipeline.rollout import rollout_tasks
from lbi.types import Doc, Example, Failure, Task, Trajectory, Verdict, content_id

if TYPE_CHECKING:
    from lbi.run import RunContext

STAGES = ("tasks", "rollout", "backward", "filter")


def _record_env(ctx: RunContext) -> None:
    env = ctx.env_factory()()
    try:
        ctx.store.set_meta("env", ctx.config.env)
        ctx.store.set_meta("action_space", asdict(env.action_space()))
    finally:
        env.close()


def action_space(ctx: RunContext) -> ActionSpace:
    data = ctx.store.get_meta("action_space")
    if data is None:
        _record_env(ctx)
        data = ctx.store.get_meta("action_space")
    return ActionSpace(**data)


async def run_tasks(ctx: RunContext) -> None:
    _record_env(ctx)
    source = ctx.config.synth.task_source
    if source in ("docs", "both"):
        env = ctx.env_factory()()
        try:
            await task_stage.propose_from_docs(ctx, env)
        finally:
            env.close()
    if source in ("explore", "both"):
        await task_stage.propose_from_exploration(ctx, ctx.env_factory())


SELECTED = "synth_tasks_selected"  # meta: how many tasks `synth_tasks` kept, and from what


def synth_tasks(ctx: RunContext) -> list[Task]:
    """The kept (deduplicated) synthesized tasks, in a deterministic order."""
    proposed = [t for t in ctx.store.all(Task) if t.origin in ("docs", "explore", "user")]
    cfg = ctx.config.synth
    embed = ctx.embedder().embed if cfg.dedup_threshold < 1.0 and proposed else None
    kept = task_stage.select_tasks(proposed, embed, cfg.dedup_threshold)
    kept = kept[: cfg.max_tasks] if cfg.max_tasks else kept
    with contextlib.suppress(PermissionError):  # the viewer's store is read-only
        ctx.store.set_meta(SELECTED, {"key": _selection_key(ctx), "count": len(kept)})
    return kept


def count_synth_tasks(ctx: RunContext) -> int:
    """`len(synth_tasks(ctx))`, from the store's meta when the tasks and the settings that select
    them are as when it was last counted: a Table 1 row (stats, exports' cards, the viewer)
    then reads no task and embeds none (41k tasks took a third of a GB to select again)."""
    saved = ctx.store.get_meta(SELECTED) or {}
    if saved.get("key") == _selection_key(ctx):
        return int(saved["count"])
    return len(synth_tasks(ctx))


def _selection_key(ctx: RunContext) -> str:
    cfg = ctx.config
    settings = [cfg.synth.dedup_threshold, cfg.synth.max_tasks, cfg.embed.model_dump()]
    return content_id("synth-tasks", ctx.store.state(Task), json.dumps(settings, sort_keys=True))


def _synth_task_ids(ctx: RunContext) -> set[str]:
    return {tid for tid, origin in ctx.store.fields(Task, "id", "origin") if origin != "benchmark"}


def count_synth_trajectories(ctx: RunContext) -> int:
    ids = _synth_task_ids(ctx)
    return sum(
        1
        for tid, v in ctx.store.fields(Trajectory, "task_id", "variant")
        if tid in ids and v == "none"
    )


def synth_trajectories(ctx: RunContext) -> list[Trajectory]:
    ids = _synth_task_ids(ctx)
    return [t for t in ctx.store.all(Trajectory) if t.task_id in ids and t.variant == "none"]


def rollout_settings(ctx: RunContext, seed: int | None = None) -> EpisodeSettings:
    """Synthesis rollouts' episode settings; `seed` overrides `synth.seed`."""
    cfg = ctx.config.synth
    return EpisodeSettings(
        max_steps=cfg.max_steps,
        temperature=cfg.temperature,
        seed=cfg.seed if seed is None else seed,
        stage="rollout",
        record_digests=cfg.replay_check,
    )


async def run_rollout(ctx: RunContext) -> list[Trajectory]:
    return await rollout_tasks(
        ctx,
        synth_tasks(ctx),
        ctx.env_factory(),
        samples=ctx.config.synth.samples,
        base=rollout_settings(ctx),
    )


async def run_backward(ctx: RunContext) -> None:
    tasks = {t.id: t for t in ctx.store.all(Task)}
    await backward.construct(ctx, synth_trajectories(ctx), tasks)


def current_examples(ctx: RunContext) -> list[Example]:
    policy = ctx.config.synth.backward_policy
    return [e for e in ctx.store.all(Example) if e.policy == policy]


async def run_filter(ctx: RunContext) -> list[filt.Decision]:
    cfg = ctx.config.synth
    examples = current_examples(ctx)
    await filt.judge_examples(ctx, examples)
    verdicts = ctx.store.all(Verdict)
    decisions = decide(ctx, examples, verdicts)
    if cfg.replay_check:
        # Replay what the rules and the committee keep (replay is the most expensive check).
        judges = [door.name for door in ctx.judges()]
        committee = filt.decide(
            examples,
            verdicts,
            judges,
            cfg.combine,
            cfg.max_window_chars,
            threshold=cfg.grade_threshold,
        )
        done = {v.example_id for v in verdicts if v.judge == filt.REPLAY}
        todo = [d.example for d in committee if d.kept and d.example.id not in done]
        trajs = {t.id: t for t in ctx.store.all(Trajectory)}
        tasks = {t.id: t for t in ctx.store.all(Task)}
        ok = await filt.replay_check(todo, trajs, tasks, ctx.env_factory())
        replayed = [filt.replay_verdict(eid, passed) for eid, passed in ok.items()]
        ctx.commit(replayed)
        decisions = decide(ctx, examples, verdicts + replayed)
    return decisions


def decide(
    ctx: RunContext, examples: list[Example] | None = None, verdicts: list[Verdict] | None = None
) -> list[filt.Decision]:
    judges = [door.name for door in ctx.judges()]
    return filt.decide(
        current_examples(ctx) if examples is None else examples,
        ctx.store.all(Verdict) if verdicts is None else verdicts,
        judges,
        ctx.config.synth.combine,
        ctx.config.synth.max_window_chars,
        replay=ctx.config.synth.replay_check,
        threshold=ctx.config.synth.grade_threshold,
    )


def iter_decisions(ctx: RunContext) -> Iterator[tuple[filt.Decision, list[Verdict]]]:
    """`decide` one example at a time, with the verdicts behind it, in example-id order: the
    examples are walked by id and the verdicts by example id side by side, a page of each at a
    time, so memory does not grow with the run (the streaming exports read this)."""
    cfg = ctx.config.synth
    judges = [door.name for door in ctx.judges()]
    verdicts = ctx.store.iter_by(Verdict, "example_id")
    pending = next(verdicts, None)
    for ex in ctx.store.iter(Example):
        while pending is not None and pending.example_id < ex.id:  # of no stored example
            pending = next(verdicts, None)
        mine = []
        while pending is not None and pending.example_id == ex.id:
            mine.append(pending)
            pending = next(verdicts, None)
        if ex.policy != cfg.backward_policy:
            continue
        for d in filt.decide(
            [ex],
            mine,
            judges,
            cfg.combine,
            cfg.max_window_chars,
            replay=cfg.replay_check,
            threshold=cfg.grade_threshold,
        ):
            yield d, mine


def kept_examples(ctx: RunContext) -> list[Example]:
    return [d.example for d in decide(ctx) if d.kept]


def iter_kept(ctx: RunContext) -> Iterator[Example]:
    """The kept examples in id order, one at a time (see `iter_decisions`)."""
    return (d.example for d, _ in iter_decisions(ctx) if d.kept)


FINISHED = "synth_finished"  # meta: the key and Table 1 row of the last complete synthesis


def finish_key(ctx: RunContext, chunks: list[str]) -> str:
    """What a complete synthesis depended on: the settings that shape it and the ids of the doc
    chunks it started from. Equal keys and no failure left to retry mean nothing to do."""
    shaping = ctx.config.model_dump(
        include={"model", "extra_models", "env", "env_options", "synth", "embed", "roles", "models"}
    )
    return content_id("synth-finished", shaping, chunks)


def _current_chunks(ctx: RunContext) -> list[str]:
    """The ids of the chunks the tasks stage would start from now (the docs may have changed)."""
    if ctx.config.synth.task_source not in ("docs", "both"):
        return []
    env = ctx.env_factory()()
    try:
        return [c.id for c in task_stage.doc_chunks(env, ctx.config.synth)]
    finally:
        env.close()


def _synth_failures(ctx: RunContext) -> int:
    return sum(stage in STAGES for (stage,) in ctx.store.fields(Failure, "stage"))


async def run_all(ctx: RunContext, stages: tuple[str, ...] = STAGES) -> dict[str, Any]:
    """Every synthesis stage in order; each resumes where it stopped. A run whose last synthesis
    finished with the same settings and docs, and left no failure to retry, is not read again:
    its Table 1 row comes back from the store's meta with today's spend."""
    whole = stages == STAGES
    done = ctx.store.get_meta(FINISHED) if whole else None
    # The docs are read for the key only when there is a finished synthesis to compare with.
    if (
        done
        and not _synth_failures(ctx)
        and done.get("key") == finish_key(ctx, _current_chunks(ctx))
    ):
        return {**done["stats"], **spend(ctx), "failures": {}}
    decisions = None
    for stage in stages:
        if stage == "tasks":
            await run_tasks(ctx)
        elif stage == "rollout":
            await run_rollout(ctx)
        elif stage == "backward":
            await run_backward(ctx)
        elif stage == "filter":
            decisions = await run_filter(ctx)
        ctx.save_accounting()
    out = stats(ctx, decisions)
    if whole and not _synth_failures(ctx):
        from_docs = ctx.config.synth.task_source in ("docs", "both")
        used = (ctx.store.get_meta("chunks", []) or []) if from_docs else []
        ctx.store.set_meta(FINISHED, {"key": finish_key(ctx, used), "stats": out})
    return out


def stats(ctx: RunContext, decisions: list[filt.Decision] | None = None) -> dict[str, Any]:
    """The paper's Table 1 row plus spend per stage and calls per kept example."""
    if decisions is None:
        decisions = decide(ctx)
    judges = [door.name for door in ctx.judges()]
    return table_row(ctx, len(decisions), sum(d.kept for d in decisions), judges)


def table_row(ctx: RunContext, raw: int, kept: int, judges: list[str]) -> dict[str, Any]:
    """`stats` from counts already made (the viewer counts decisions in batches)."""
    chunk_ids = ctx.store.get_meta("chunks", []) or []
    docs = len(ctx.store.ids(Doc) | set(chunk_ids))
    acc = ctx.store.get_meta("accounting", {}) or {}
    stages = acc.get("stages", {})
    synth_calls = sum(
        stages.get(s, {}).get("calls", 0) + stages.get(s, {}).get("cache_hits", 0)
        for s in ("tasks", "rollout", "backward", "filter")
    )
    return {
        "docs": docs,
        "tasks": count_synth_tasks(ctx) if ctx.store.count(Task) else 0,
        "trajectories": count_synth_trajectories(ctx),
        "raw_examples": raw,
        "kept_examples": kept,
        "policy": ctx.config.synth.backward_policy,
        "judges": judges,
        "committee": ctx.config.synth.combine if len(judges) > 1 else "single judge",
        **spend(ctx),  # a run's money is all on one table
        "calls_per_kept_example": (synth_calls / kept) if kept else None,
        "failures": failures_by_stage(ctx),
    }


def spend(ctx: RunContext) -> dict[str, Any]:
    """The run's spend as the accounting stands: the synthesis stages in order, then every other
    spender of the run (tau2's simulated customer `user_sim`, `eval:*`), and per model."""
    acc = ctx.store.get_meta("accounting", {}) or {}
    stages = acc.get("stages", {})
    order = ["tasks", "rollout", "backward", "filter", *sorted(stages)]
    return {"stages": {s: stages[s] for s in order if s in stages}, "models": acc.get("models", {})}


def failures_by_stage(ctx: RunContext) -> dict[str, list[tuple[int, str]]]:
    """The units whose failure is still stored (the next run retries them): per stage, how
    many failed of each kind, with the first message of that kind."""
    by_stage: dict[str, list[Failure]] = {}
    for f in ctx.store.all(Failure):
        by_stage.setdefault(f.stage, []).append(f)
    return {stage: grouped(found) for stage, found in by_stage.items()}
