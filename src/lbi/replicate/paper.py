"""`lbi experiment paper`: the paper's tables for one model, environment and suite.

Table 1 (data) from the synthesis run; Table 2 (none / docs RAG / distill / Reflexion / LATS /
lbi `both`, with each arm's cost per task) and
Table 4 (observation / model / both) from one evaluation of that run; the backward-construction
ablation (whole-trajectory labels only vs windows); Table 6 (tasks from docs vs exploration);
gold data (the environment's reference solutions at seeds kept out of evaluation) and the stage
swap (gold in one stage at a time); Table 3 (base vs LoRA) where the model can be trained here.
Every arm is a run, so a rerun resumes; the door's budget caps the spend.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbi.agents.baselines import BASELINES, calls_at_most, check_baselines
from lbi.agents.retrieval import INDEX_FOR
from lbi.config import Config, ConfigError, EvalConfig
from lbi.envs.base import cannot_replay, seeds_vary
from lbi.eval.contamination import overlap_report
from lbi.eval.harness import EvalPlan, evaluate, supported_variants
from lbi.pipeline.indexes import build_index
from lbi.pipeline.synth import current_examples, kept_examples, run_all
from lbi.replicate import arms
from lbi.replicate.page import Evidence, machine, write_page
from lbi.run import open_run
from lbi.train.options import TrainResult
from lbi.types import EvalResult, Task, Trajectory

HELD_OUT = (
    "A seed does not change this environment's tasks, so gold data (and the swap arms' data made "
    "on the benchmark's tasks) comes from the evaluated tasks themselves: each task's retrieval "
    "leaves out the examples made on it (leave one task out), and LoRA on gold data is not run "
    "(an adapter trained on the evaluated tasks' own answers would measure recall, not learning)."
)

TABLE2 = ["none", "docs", "distill", "reflexion", "lats", "both"]
TABLE4 = ["observation", "model", "both"]
SWAPS = ["swap-tasks", "swap-rollouts", "swap-labels", "swap-judge"]
LORA = ["lora-lbi", "lora-gold"]
ALL_ARMS = [*dict.fromkeys(TABLE2 + TABLE4), "whole-only", "explore-both", "gold", *SWAPS, *LORA]


@dataclass
class PaperPlan:
    name: str
    suite: str
    seeds: int = 1
    gold_seeds: list[int] = field(default_factory=lambda: [1000, 1001])
    max_steps: int = 8
    train: bool = True
    out_dir: Path = Path("docs/evidence")
    page: str = "evidence"
    only: list[str] | None = None  # the arms to run (None: all)
    command: str = ""  # for the page: how it was made

    def arms(self) -> list[str]:
        return [a for a in ALL_ARMS if self.only is None or a in self.only]

    def wants(self, *arms: str) -> bool:
        return any(a in self.arms() for a in arms)

    def synth_seed(self) -> int:
        """The first environment seed of synthesis rollouts: past every evaluation and gold seed,
        so no synthesized trajectory starts from an instance the evaluation will see."""
        return max([self.seeds - 1, *self.gold_seeds]) + 1


def check_arms(names: list[str]) -> list[str]:
    unknown = [a for a in names if a not in ALL_ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {', '.join(unknown)}; arms: {', '.join(ALL_ARMS)}")
    return ["none", *[a for a in names if a != "none"]]  # every comparison is against none


def calls_per_step(arm: str) -> int:
    return 2 if arm in ("model", "both", "distill") or arm.endswith("both") or arm in (
        "gold", "whole-only", *SWAPS) else 1  # fmt: skip


def estimate(
    plan: PaperPlan,
    n_tasks: int,
    lora: bool = True,
    lora_gold: bool = True,
    eval_cfg: EvalConfig | None = None,
) -> dict[str, Any]:
    """Upper bounds on evaluation model calls (every episode runs to the step limit; Reflexion
    and LATS to their caps)."""
    episodes = n_tasks * plan.seeds
    skipped = ([] if lora else LORA) + ([] if lora_gold else ["lora-gold"])
    arms = [a for a in plan.arms() if a not in skipped]
    cfg = eval_cfg or EvalConfig()

    def per_episode(a: str) -> int:
        if a in BASELINES:
            return calls_at_most(a, cfg, plan.max_steps)
        return plan.max_steps * calls_per_step(a)

    per_arm = {a: episodes * per_episode(a) for a in arms}
    return {"tasks": n_tasks, "episodes_per_arm": episodes, "eval_calls_max": per_arm}


def lora_skip_reason(cfg: Config, plan: PaperPlan) -> str | None:
    if not plan.wants(*LORA):
        return "not among the arms run (--arms)"
    if not plan.train:
        return "training turned off (--no-train)"
    if cfg.model.split(":", 1)[0] != "local":
        return f"model {cfg.model!r} is served, not trained here: train.base must be a local model"
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("peft") is None:
        return "the training extra is not installed (pip install 'lbi[train]')"
    return None


async def run_paper(cfg: Config, plan: PaperPlan, say: Callable[[str], None] = print) -> Path:
    started = time.perf_counter()
    cfg = cfg.model_copy(deep=True)
    cfg.synth.seed = max(cfg.synth.seed, plan.synth_seed())
    main = open_run(cfg, plan.name)
    model = main.door().name
    make_env = main.env_factory()
    probe = make_env()
    try:
        bench = probe.load_suite(plan.suite)
        varies = seeds_vary(probe)
        plan, skipped = without_lats(probe, plan)  # before synthesis spends anything
    finally:
        probe.close()
    say(f"synthesis: run {plan.name} (rollout seeds from {cfg.synth.seed})")
    table1 = {"docs tasks": await run_all(main)}
    eplan = EvalPlan(plan.suite, [], plan.seeds, 0.0, plan.max_steps)
    usable = [*supported_variants(main), *BASELINES]
    eplan.variants = [
        v for v in dict.fromkeys(TABLE2 + TABLE4) if v in usable and (v == "none" or plan.wants(v))
    ]
    indexes = {
        k: build_index(main, k) for k in {INDEX_FOR[v] for v in eplan.variants if v in INDEX_FOR}
    }
    say(f"evaluation: {', '.join(eplan.variants)} on {len(bench)} tasks x {plan.seeds} seeds")
    results: list[EvalResult] = list(await evaluate(main, eplan, indexes))
    gold: list[Trajectory] = []
    if plan.wants("gold", "lora-gold", *SWAPS):
        say(f"gold: reference solutions at seeds {plan.gold_seeds}")
        gold = await arms.gold_data(
            cfg, plan.name, make_env, bench, plan.gold_seeds, plan.max_steps
        )
    sets = arms.swap_sets(main, gold)
    sets["whole-only"] = arms.whole_trajectory_only(main)
    if plan.wants("swap-rollouts"):
        sets["swap-rollouts"] = await arms.lbi_rollouts_on_gold(cfg, plan.name, gold, bench)
    if plan.wants("swap-tasks"):
        sets["swap-tasks"] = await arms.lbi_on_gold_tasks(cfg, plan.name, bench, plan.gold_seeds)
    counts = {k: len(v) for k, v in sets.items()} | {"lbi": len(kept_examples(main))}
    for arm in plan.arms():
        if arm in sets:
            held = {} if varies else arms.own_task_data(bench, sets[arm])
            left = sum(map(len, held.values()))
            say(f"arm {arm}: {len(sets[arm])} examples ({left} held out from their own task)")
            results += await arms.eval_examples(
                cfg, plan.name, arm, eplan, sets[arm], model, held_out=held
            )
    if plan.wants("explore-both"):
        explore_cfg = cfg.model_copy(deep=True)
        explore_cfg.synth.task_source = "explore"
        explore = open_run(explore_cfg, f"{plan.name}-explore")
        say("Table 6: synthesis from exploration only")
        table1["exploration tasks"] = await run_all(explore)
        counts["explore"] = len(kept_examples(explore))
        results += await arms.eval_examples(
            cfg, plan.name, "explore-both", eplan, kept_examples(explore), model
        )
        await explore.aclose()
    skip = lora_skip_reason(cfg, plan)
    training: list[str] = []
    if skip is None:
        data = {"lora-lbi": kept_examples(main)} | ({"lora-gold": sets["gold"]} if varies else {})
        wanted = {k: v for k, v in data.items() if plan.wants(k)}
        results += await _lora(cfg, plan, eplan, wanted, model, say, training)
    ev = Evidence(
        title=f"{model} on {cfg.env} / {plan.suite}",
        model=model,
        env=cfg.env,
        suite=plan.suite,
        seeds=plan.seeds,
        gold_seeds=plan.gold_seeds,
        table1=table1,
        example_counts=counts,
        results=results,
        lora_skipped=skip,
        arms=plan.arms(),
        command=plan.command,
        gold_success=sum(t.success for t in gold) / len(gold) if gold else None,
        training=training,
        notes=[
            f"Machine: {machine()}. Wall time of this command {time.perf_counter() - started:.0f} s "
            "(work already stored is not redone); the model's calls took "
            f"{main.accountant.total.latency_s:.0f} s in all, over every run of the command "
            f"(`lbi stats {plan.name}`).",
            contamination_line(main, bench, plan.seeds),
            *([] if varies else [HELD_OUT]),
            *skipped,
        ],
    )
    main.save_accounting()
    await main.aclose()
    return write_page(ev, plan.out_dir, plan.page)


def without_lats(env: Any, plan: PaperPlan) -> tuple[PaperPlan, list[str]]:
    """LATS needs an environment that replays: asked for by name on one that cannot, it is
    refused in one line; among all the arms, it is left out, and the page says why."""
    why = cannot_replay(env)
    if why is None or "lats" not in plan.arms():
        return plan, []
    if plan.only is not None:
        check_baselines(env, ["lats"])
    only = [a for a in plan.arms() if a != "lats"]
    note = f"LATS was not run: it restores states by reset + replay; {env.name} cannot ({why})."
    return dataclasses.replace(plan, only=only), [note]


def contamination_line(main: Any, bench: list[Task], seeds: int) -> str:
    """How much of the suite lbi's own data restates (reported; `lbi eval` refuses on it)."""
    data = [*current_examples(main), *(t for t in main.store.all(Task) if t.origin != "benchmark")]
    report = overlap_report(bench, data, seeds=range(seeds))
    return f"Contamination check of lbi's data against the suite: {report.line()}"


async def _lora(
    cfg: Config,
    plan: PaperPlan,
    eplan: EvalPlan,
    data: dict[str, list],
    model: str,
    say: Callable[[str], None],
    training: list[str],
) -> list[EvalResult]:
    from lbi.pipeline.synth import action_space
    from lbi.train.sft import train
    from lbi.train.sources import chats_from_examples

    main = open_run(cfg, plan.name)
    space = action_space(main)
    out: list[EvalResult] = []
    for arm, examples in data.items():
        chats = chats_from_examples(examples, space)
        if not chats:
            say(f"{arm}: no examples to train on")
            continue
        target = main.dir / arm
        gguf = target / "model.f16.gguf"
        if not gguf.is_file():
            say(f"{arm}: LoRA on {len(chats)} chats")
            result = train(chats, cfg.train.base, target, cfg.train)
            gguf = Path(result.gguf_path) if result.gguf_path else gguf
        if (done := target / "train_result.json").is_file():
            training.append(training_line(arm, TrainResult.model_validate_json(done.read_text())))
        out += await arms.eval_model(cfg, plan.name, arm, eplan, f"local:{gguf}", model)
    await main.aclose()
    return out


def training_line(arm: str, r: TrainResult) -> str:
    def loss(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    o = r.options
    return (
        f"{arm}: {r.n_train} chats ({r.n_eval} held out), {r.steps} steps, lr {o.lr:g}, batch "
        f"{o.batch_size}, {o.epochs:g} epochs; held-out loss {loss(r.eval_loss_before)} → "
        f"{loss(r.eval_loss_after)}; {r.train_tokens} tokens at {r.tokens_per_s:.0f} tok/s "
        f"({r.device})."
    )
