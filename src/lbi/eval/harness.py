"""`lbi eval`: run benchmark tasks under every retrieval variant and seed, store the results.

Benchmark tasks only, never synthesized ones. Each (variant, task, seed) episode is stored with
its trajectory and result as it finishes, so an interrupted evaluation resumes. Seeds reach the
model call; with more than one seed the agent samples at `eval.temperature`. Trivial "floor"
policies (an empty answer, a constant action) run on the same suite so the report shows what
scores without any model at all. An episode that fails (a model call that failed after its
retries, an environment that raised) is stored as a `Failure`, not as a result, and the next
run of the same command retries it (`lbi.pipeline.failures`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbi.agents.baselines import BASELINES, check_baselines, run_baseline
from lbi.agents.env_errors import EnvCallFailed
from lbi.agents.react import EpisodeSettings, FixedPolicy, drive, new_trajectory, run_episode
from lbi.agents.retrieval import INDEX_FOR, VARIANTS, VariantRetriever
from lbi.envs.base import EnvError, Environment
from lbi.envs.suite_file import with_suite
from lbi.eval.contamination import require_benchmark
from lbi.eval.metered import MeteredDoor
from lbi.executor import env_resources, make_executor
from lbi.models.base import ModelError
from lbi.pipeline.failures import StageFailures
from lbi.progress import console, stage_progress
from lbi.types import EvalResult, Example, Task, Trajectory

if TYPE_CHECKING:
    from lbi.eval.contamination import ContaminationReport
    from lbi.retrieval.examples import ExampleIndex
    from lbi.run import RunContext


@dataclass
class EvalPlan:
    suite: str
    variants: list[str]
    seeds: int
    temperature: float
    max_steps: int
    limit: int | None = None  # only the suite's first N tasks
    floors: bool = True  # also run the trivial policies (once per suite is enough)
    # task id -> record ids that task's retrieval never returns: data made on the task itself,
    # left out when a seed does not change the task (cross-fitting, leave one task out)
    held_out: dict[str, frozenset[str]] = field(default_factory=dict)
    max_steps_from: str = ""  # why the step limit is what it is (step_limit), for the report


STEPS = 8  # the step limit when the suite has no references and the user sets none
STEP_MARGIN = 4  # steps beyond the suite's longest reference: room for one detour or retry


def step_limit(configured: int | None, tasks: list[Task]) -> tuple[int, str]:
    """The step limit of an evaluation, and why: `eval.max_steps` when the user sets it, else
    the longest reference in the suite plus STEP_MARGIN (at least STEPS), so a valid run is
    never cut off before its gold length."""
    if configured is not None:
        return configured, "eval.max_steps"
    longest = max((len(t.reference) for t in tasks), default=0)
    if longest + STEP_MARGIN <= STEPS:
        return STEPS, f"the default; the longest reference has {longest} steps"
    return longest + STEP_MARGIN, f"the longest reference, {longest} steps, + {STEP_MARGIN}"


def supported_variants(ctx: RunContext) -> list[str]:
    """Every variant the run has data for: `none` and `docs` always; the rest need a dataset."""
    from lbi.pipeline.synth import current_examples, synth_trajectories

    out = ["none", "docs"]
    if current_examples(ctx):
        out += ["instruction", "observation", "model", "both"]
    if synth_trajectories(ctx):
        out.append("distill")
    return [v for v in VARIANTS if v in out]


def contamination(ctx: RunContext, tasks: list[Task]) -> ContaminationReport:
    from lbi.eval.contamination import check_contamination
    from lbi.pipeline.synth import current_examples

    require_benchmark(tasks, ctx.config.env)

    data: list[Example | Task] = [
        *current_examples(ctx),
        *(t for t in ctx.store.all(Task) if t.origin != "benchmark"),
    ]
    return check_contamination(
        tasks, data, allow=ctx.config.eval.allow_contamination, seeds=range(ctx.config.eval.seeds)
    )


def _result(
    plan: EvalPlan,
    variant: str,
    task: Task,
    seed: int,
    model: str,
    traj: Trajectory,
    meter: MeteredDoor | None,
    wall: float,
    data: str = "",
) -> EvalResult:
    return EvalResult(
        data=data,
        suite=plan.suite,
        variant=variant,
        task_id=task.id,
        task_name=task.name or task.id,
        model=model,
        seed=seed,
        success=traj.success,
        reward=traj.reward,
        steps=len(traj.steps),
        calls=meter.calls if meter else 0,
        prompt_tokens=meter.prompt_tokens if meter else 0,
        completion_tokens=meter.completion_tokens if meter else 0,
        latency_s=wall,
        cost_usd=meter.cost_usd if meter else 0.0,
        trajectory_id=traj.id,
        trials=len(traj.attempts),
        first_success=traj.attempts[0].success if traj.attempts else None,
        reflections=sum(bool(a.reflection) for a in traj.attempts),
        nodes=traj.nodes,
    )


def floor_actions(env: Environment, policy: str, max_steps: int) -> list[str]:
    space = env.action_space()
    if policy == "floor:empty":
        return [space.finish] if space.finish else []
    if policy == "floor:constant":
        return [space.examples[0]] * max_steps if space.examples else []
    raise ValueError(policy)


async def _floor_episode(
    env: Environment, task: Task, actions: list[str], seed: int, model: str, variant: str
) -> Trajectory:
    settings = EpisodeSettings(
        max_steps=max(1, len(actions)), seed=seed, sample=seed, variant=variant
    )
    return await drive(env, task, model, settings, FixedPolicy(actions))


async def evaluate(
    ctx: RunContext, plan: EvalPlan, indexes: dict[str, ExampleIndex]
) -> list[EvalResult]:
    door = ctx.door()
    # The model that writes retrieval queries, where `roles.query` names one of its own.
    query_door = ctx.door(ctx.config.roles.query) if ctx.config.roles.query else None
    make_env = with_suite(ctx.env_factory(), plan.suite)  # a suite file: its tasks and checks
    probe = make_env()
    tasks = probe.load_suite(plan.suite)[: plan.limit]
    require_benchmark(tasks, plan.suite)
    check_baselines(probe, plan.variants)
    floors = [
        p
        for p in ("floor:empty", "floor:constant")
        if plan.floors and floor_actions(probe, p, plan.max_steps)
    ]
    capacity, resources = probe.max_concurrency, env_resources(probe)
    probe.close()
    temperature = plan.temperature if plan.seeds > 1 else 0.0
    jobs = [(v, s, t) for v in [*plan.variants, *floors] for s in range(plan.seeds) for t in tasks]
    # What each variant retrieves from, so results on other data are not taken for done.
    data = {
        v: index.fingerprint()
        for v in plan.variants
        if (index := indexes.get(INDEX_FOR.get(v, ""))) is not None
    }

    def rid(job: tuple[str, int, Task]) -> str:
        v, s, t = job
        return EvalResult(
            suite=plan.suite,
            variant=v,
            task_id=t.id,
            model=door.name,
            seed=s,
            success=False,
            reward=0,
            steps=0,
            data=data.get(v, ""),
        ).id

    todo = [j for j in jobs if rid(j) not in ctx.store.ids(EvalResult)]
    _drop_stale(ctx, jobs, {rid(j) for j in jobs}, door.name, plan.suite)
    # What this eval set out to do, so `lbi report` can say what an interrupted one is missing.
    ctx.store.set_meta(
        "eval_plan",
        {"suite": plan.suite, "model": door.name, "jobs": [[v, s, t.id] for v, s, t in jobs]},
    )

    failures = StageFailures(ctx, "eval", len(jobs), "episodes")

    async def one(
        job: tuple[str, int, Task], env: Environment
    ) -> tuple[Trajectory, EvalResult] | None:
        variant, seed, task = job
        start = time.perf_counter()

        def result(traj: Trajectory, meter: MeteredDoor | None) -> tuple[Trajectory, EvalResult]:
            wall = time.perf_counter() - start
            on = data.get(variant, "")
            return traj, _result(plan, variant, task, seed, door.name, traj, meter, wall, on)

        try:
            if variant.startswith("floor:"):
                traj = await _floor_episode(
                    env, task, floor_actions(env, variant, plan.max_steps), seed, door.name, variant
                )
                return result(traj, None)
            meter = MeteredDoor(door)
            settings = EpisodeSettings(
                max_steps=plan.max_steps,
                temperature=temperature,
                seed=seed,
                sample=seed,
                variant=variant,
                stage=f"eval:{variant}",
            )
            if variant in BASELINES:
                traj = await run_baseline(variant, meter, env, task, settings, ctx.config.eval)  # type: ignore[arg-type]
            else:
                retriever = VariantRetriever(
                    variant,
                    indexes.get(INDEX_FOR.get(variant, "")),
                    ctx.config.retrieval,
                    plan.held_out.get(task.id, frozenset()),
                    query_door,
                )
                traj = await run_episode(meter, env, task, settings, retriever)  # type: ignore[arg-type]
            return result(traj, meter)
        except (ModelError, EnvCallFailed) as e:
            failures.fail(rid(job), e, f"{variant} task {task.name or task.id} seed {seed}")
            return None
        except EnvError as e:
            if not getattr(e, "timeout", False):
                raise
            # A cluster worker whose environment stopped answering: a failed episode, not a
            # stalled evaluation (the local executor never raises this).
            settings = EpisodeSettings(seed=seed, sample=seed, variant=variant)
            traj = new_trajectory(task, door.name, settings, f"env timeout: {e}")
            return result(traj, None)

    ctx.store.put(tasks)
    concurrency = max(1, min(capacity, ctx.config.door.concurrency))
    executor = make_executor(ctx.config.executor)
    with stage_progress(
        f"eval {plan.suite}", len(jobs), ctx.accountant, done=len(jobs) - len(todo)
    ) as advance:
        async for job, got in executor.episodes(one, todo, concurrency, make_env, resources):
            failed, drop = failures.outcome(rid(job))
            ctx.commit(list(got) if got is not None else failed, replace=True, drop=drop)
            advance(failed=len(failed))
            failures.check()
    failures.report()
    wanted = {rid(j) for j in jobs}
    return [r for r in ctx.store.all(EvalResult) if r.id in wanted]


def _drop_stale(
    ctx: RunContext, jobs: list[tuple[str, int, Task]], wanted: set[str], model: str, suite: str
) -> None:
    """Delete the stored results of these episodes that were run on other data than the
    variant's index holds now (the dataset grew or changed since): they are rerun, and a report
    never mixes them with the new ones. Their trajectories stay in the store."""
    keys = {(v, s, t.id) for v, s, t in jobs}
    stale = [
        r
        for r in ctx.store.all(EvalResult)
        if r.suite == suite
        and r.model == model
        and (r.variant, r.seed, r.task_id) in keys
        and r.id not in wanted
    ]
    if stale:
        ctx.store.put(drop=[(EvalResult.kind, r.id) for r in stale])
        variants = ", ".join(sorted({r.variant for r in stale}))
        console.print(
            f"eval: {len(stale)} result(s) of {variants} were made on data the run no longer"
            " holds; running them again",
            highlight=False,
            soft_wrap=True,
        )


def missing_episodes(ctx: RunContext, results: list[EvalResult]) -> dict[str, list[str]]:
    """Per variant, the episodes the last `lbi eval` planned that have no result, as "task N"
    (its index in the suite, as `lbi episode --task N` takes it) and the seed when there are several."""
    plan = ctx.store.get_meta("eval_plan")
    if not plan:
        return {}
    have = {(r.variant, r.seed, r.task_id) for r in results if r.model == plan["model"]}
    order = {tid: n for n, tid in enumerate(dict.fromkeys(j[2] for j in plan["jobs"]))}
    seeded = any(j[1] for j in plan["jobs"])
    missing: dict[str, list[str]] = {}
    for variant, seed, task_id in plan["jobs"]:
        if (variant, seed, task_id) not in have:
            label = f"task {order[task_id]}" + (f" seed {seed}" if seeded else "")
            missing.setdefault(variant, []).append(label)
    return missing


def report_meta(ctx: RunContext, plan: EvalPlan) -> dict[str, Any]:
    from lbi.pipeline.synth import stats

    s = stats(ctx)
    return {
        "run_name": ctx.name,
        "env": ctx.config.env,
        "suite": plan.suite,
        "model": ctx.config.model,
        "temperature": plan.temperature if plan.seeds > 1 else 0.0,
        "seeds": plan.seeds,
        "max_steps": plan.max_steps,
        "max_steps_from": plan.max_steps_from,
        "dataset": {
            k: s[k] for k in ("docs", "tasks", "trajectories", "raw_examples", "kept_examples")
        },
        "failures": s["failures"].get("eval", []),
    }
