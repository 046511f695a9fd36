"""Arms of the experiment: a set of examples (or a model) evaluated on the same tasks and seeds.

Each arm evaluates in a run of its own (`<name>-<arm>`), so its episodes resume like any run's
and never collide with another arm's; its results come back relabelled with the arm's name and
the main model, so the paired statistics of `lbi.eval.stats` compare arms like variants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lbi.config import Config
from lbi.eval.harness import EvalPlan, evaluate
from lbi.pipeline.gold import gold_examples, gold_rollouts, true_label
from lbi.pipeline.rollout import rollout_tasks
from lbi.pipeline.synth import (
    current_examples,
    kept_examples,
    rollout_settings,
    run_all,
    synth_trajectories,
)
from lbi.run import RunContext, open_run
from lbi.types import EvalResult, Example, Record, Task, Trajectory

R = TypeVar("R", bound=Record)

if TYPE_CHECKING:
    from lbi.retrieval.examples import ExampleIndex


def index_of(ctx: RunContext, records: Sequence[Example]) -> ExampleIndex:
    from lbi.retrieval.examples import ExampleIndex
    from lbi.retrieval.text_index import TextIndex

    index = ExampleIndex(TextIndex.from_config(ctx.embedder(), ctx.config))
    if records:
        index.add(list(records))
    return index


def relabel(results: list[EvalResult], arm: str, model: str) -> list[EvalResult]:
    return [r.model_copy(update={"variant": arm, "model": model}) for r in results]


def own_task_data(bench: Sequence[Task], examples: Sequence[Example]) -> dict[str, frozenset[str]]:
    """Benchmark task id -> ids of the examples made on that task: on the task itself (gold) or
    on the user-origin copy the swap arms roll out (`user_copy`)."""
    owner = {t.id: t.id for t in bench} | {user_copy(t).id: t.id for t in bench}
    out: dict[str, set[str]] = {}
    for e in examples:
        if e.task_id in owner:
            out.setdefault(owner[e.task_id], set()).add(e.id)
    return {k: frozenset(v) for k, v in sorted(out.items())}


async def eval_examples(
    cfg: Config,
    name: str,
    arm: str,
    plan: EvalPlan,
    examples: Sequence[Example],
    model: str,
    held_out: dict[str, frozenset[str]] | None = None,
) -> list[EvalResult]:
    """The `both` procedure over `examples` (the paper's agent with another dataset); a task's
    `held_out` examples are never retrieved for it."""
    ctx = open_run(cfg, f"{name}-{arm}")
    try:
        one = EvalPlan(
            plan.suite,
            ["both"],
            plan.seeds,
            plan.temperature,
            plan.max_steps,
            floors=False,
            held_out=held_out or {},
        )
        results = await evaluate(ctx, one, {"examples": index_of(ctx, examples)})
        return relabel(results, arm, model)
    finally:
        ctx.save_accounting()
        await ctx.aclose()


async def eval_model(
    cfg: Config, name: str, arm: str, plan: EvalPlan, model_spec: str, model: str
) -> list[EvalResult]:
    """Another model (a LoRA-trained one) with no examples."""
    ctx = open_run(cfg.model_copy(update={"model": model_spec}), f"{name}-{arm}")
    try:
        one = EvalPlan(
            plan.suite, ["none"], plan.seeds, plan.temperature, plan.max_steps, floors=False
        )
        return relabel(await evaluate(ctx, one, {}), arm, model)
    finally:
        ctx.save_accounting()
        await ctx.aclose()


def fresh(record: R, **update: Any) -> R:
    """A copy with changed fields and its content-hash id recomputed."""
    return type(record)(**{**record.model_dump(exclude={"id"}), **update})


def user_copy(task: Task) -> Task:
    """A benchmark task as the swap arms roll it out: a user's task, with an id of its own, so
    its synthesis data never shares ids with the evaluated task."""
    return fresh(task, origin="user")


async def gold_data(
    cfg: Config,
    name: str,
    make_env: Callable[[], object],
    bench: list[Task],
    seeds: list[int],
    max_steps: int,
) -> list[Trajectory]:
    """The reference solution on every benchmark task at the training seeds, kept in the run
    `<name>-gold-rollouts` so that a rerun drives none of them again (and they can be viewed)."""
    ctx = open_run(cfg, f"{name}-gold-rollouts")
    try:
        have = {(t.task_id, t.seed): t for t in ctx.store.all(Trajectory) if t.variant == "gold"}
        for task in bench:  # stored task by task, so a killed run keeps what it drove
            new = await gold_rollouts(make_env, [task], seeds, max(max_steps, 30), done=set(have))
            ctx.commit(new)
            have |= {(t.task_id, t.seed): t for t in new}
        return [have[(t.id, s)] for t in bench for s in seeds if (t.id, s) in have]
    finally:
        await ctx.aclose()


async def lbi_rollouts_on_gold(
    cfg: Config, name: str, gold: list[Trajectory], bench: list[Task]
) -> list[Example]:
    """Stage swap `rollouts`: gold trajectories, labelled and judged by lbi's own stages."""
    ctx = open_run(cfg, f"{name}-swap-rollouts")
    try:
        by_id = {t.id: user_copy(t) for t in bench}
        ctx.store.put(list(by_id.values()))
        trajs = [fresh(g, variant="none", task_id=by_id[g.task_id].id) for g in gold]
        ctx.commit(trajs, replace=True)
        await run_all(ctx, ("backward", "filter"))
        return kept_examples(ctx)
    finally:
        ctx.save_accounting()
        await ctx.aclose()


async def lbi_on_gold_tasks(
    cfg: Config, name: str, bench: list[Task], seeds: list[int]
) -> list[Example]:
    """Stage swap `tasks`: the environment's own tasks (the benchmark's, at the gold seeds, kept
    out of evaluation) in place of tasks written from the docs; lbi rolls out, labels, judges."""
    ctx = open_run(cfg, f"{name}-swap-tasks")
    try:
        tasks = [user_copy(t) for t in bench]
        ctx.store.put(tasks)
        make_env = ctx.env_factory()
        for seed in seeds:
            base = rollout_settings(ctx, seed)
            await rollout_tasks(ctx, tasks, make_env, samples=1, base=base)
        await run_all(ctx, ("backward", "filter"))
        return kept_examples(ctx)
    finally:
        ctx.save_accounting()
        await ctx.aclose()


def swap_sets(main: RunContext, gold: list[Trajectory]) -> dict[str, list[Example]]:
    """Example sets with one stage of lbi's synthesis replaced by gold (no model calls)."""
    trajs = {t.id: t for t in synth_trajectories(main)}
    raw = current_examples(main)
    return {
        # the judge: keep what the environment's own reward says succeeded
        "swap-judge": [
            e for e in raw if trajs.get(e.trajectory_id) and trajs[e.trajectory_id].success
        ],
        # the labels: each of lbi's trajectories under the instruction it really carried out
        "swap-labels": gold_examples(trajs.values(), true_label, only_success=False),
        "gold": gold_examples(gold),
    }


def whole_trajectory_only(main: RunContext) -> list[Example]:
    """Backward-construction ablation: keep only labels of whole trajectories, no windows."""
    lengths = {t.id: len(t.steps) for t in synth_trajectories(main)}
    return [
        e for e in kept_examples(main) if e.i == 0 and e.j == lengths.get(e.trajectory_id, -1) - 1
    ]
