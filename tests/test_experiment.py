"""`lbi experiment paper` end to end with the scripted model on the toy environment."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lbi.cli import app
from lbi.replicate.page import TABLES
from lbi.replicate.paper import LORA
from lbi.types import Task, Trajectory


def _invoke(tmp_path: Path, *extra: str) -> str:
    args = ["experiment", "paper", "--model", "scripted", "--env", "toy", "--seeds", "2"]
    args += ["--set", f"run_root={tmp_path / 'runs'}", "--set", "embed.name=hash"]
    args += ["--gold-seeds", "1000", "--out", str(tmp_path / "evidence"), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    text = _invoke(tmp_path, "--dry-run")
    text = " ".join(text.split())
    assert "toy-5 (5 tasks) x 2 seeds" in text and "at most" in text and "Table 3: skipped" in text
    assert not (tmp_path / "evidence").exists() and not (tmp_path / "runs").exists()


def test_gold_seeds_must_stay_out_of_evaluation(tmp_path: Path) -> None:
    args = ["experiment", "paper", "--model", "scripted", "--env", "toy", "--seeds", "2"]
    args += ["--gold-seeds", "1", "--set", f"run_root={tmp_path}", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "also evaluation seeds" in result.output


def test_paper_writes_every_table_and_resumes(tmp_path: Path) -> None:
    _invoke(tmp_path)
    page = (tmp_path / "evidence" / "paper-toy-toy-5.md").read_text()
    assert "## Table 1 — data" in page and all(f"## {t}" in page for t in TABLES)
    assert "Gold policy success on its own tasks: 100.0%." in page
    assert "Skipped: model 'scripted' is served" in page
    assert (tmp_path / "evidence" / "paper-toy-toy-5.png").read_bytes().startswith(b"\x89PNG")
    results = json.loads((tmp_path / "evidence" / "paper-toy-toy-5.json").read_text())
    arms = {r["variant"] for r in results}
    assert {"none", "docs", "distill", "both", "observation", "model", "gold"} <= arms
    assert {"whole-only", "explore-both", "swap-judge", "swap-labels", "swap-rollouts"} <= arms
    assert "swap-tasks" in arms and {"reflexion", "lats"} <= arms
    assert all(r["success"] for r in results if r["variant"] == "gold")
    # Table 2 has the paper's six columns, each arm's cost per task, and CIs against both
    table2 = page.split("## Table 2", 1)[1].split("## ", 1)[0]
    assert "| $ / task | calls / task |" in table2 and "Δ vs both pp [95% CI]" in table2
    assert all(f"| {a} |" in table2 for a in ("none", "docs", "distill", "reflexion", "lats"))
    assert "lats pass@1" in table2 and "reflexion pass@1" in table2
    _invoke(tmp_path)  # a rerun resumes: the same episodes, nothing duplicated
    again = json.loads((tmp_path / "evidence" / "paper-toy-toy-5.json").read_text())
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in results)


def test_arms_choose_what_runs_and_synthesis_stays_off_evaluation_seeds(tmp_path: Path) -> None:
    from lbi.config import load_config
    from lbi.pipeline.synth import synth_trajectories
    from lbi.run import open_run

    _invoke(tmp_path, "--arms", "both,gold", "--page", "few")
    page = (tmp_path / "evidence" / "few.md").read_text()
    results = json.loads((tmp_path / "evidence" / "few.json").read_text())
    arms = {r["variant"] for r in results if not r["variant"].startswith("floor:")}
    assert arms == {"none", "both", "gold"}
    assert page.count("Not run (`--arms` left these arms out).") == 4  # 3, 4, 6, ablation
    table2 = page.split("## Table 2", 1)[1].split("## ", 1)[0]
    assert "| both |" in table2 and "| docs |" not in table2  # none vs lbi, what ran of it
    assert "## Table 3 — training (base vs LoRA)\n\nNot run" in page
    cfg = load_config(None, [f"run_root={tmp_path / 'runs'}", "embed.name=hash", "env=toy"])
    cfg = cfg.model_copy(update={"model": "scripted"})
    trajs = synth_trajectories(open_run(cfg, "paper-toy-toy-5"))
    # evaluation seeds 0, 1 and gold seed 1000: synthesis starts past all of them
    assert trajs and {t.seed for t in trajs} == {1001}
    # The toy's seeds do not change a task: each task's own gold example is never retrieved
    # for it (leave one task out), while the other tasks' gold examples are.
    assert "leave one task out" in page and "Contamination check of lbi's data" in page
    gold_run = open_run(cfg, "paper-toy-toy-5-gold")
    tasks = {t.id: t for t in gold_run.store.all(Task)}
    shown = own = 0
    for traj in gold_run.store.all(Trajectory):
        prompts = json.dumps([s.messages for s in traj.steps])
        own += json.dumps(f"Instruction: {tasks[traj.task_id].instruction}\n")[1:-1] in prompts
        shown += prompts.count("Instruction: ")
    assert own == 0 and shown > 0


def test_own_task_data_finds_gold_and_swap_copies() -> None:
    from lbi.replicate.arms import fresh, own_task_data
    from lbi.types import Example, Step

    a, b = (Task(env="toy", instruction=f"put {k}", origin="benchmark") for k in "ab")
    step = Step(index=0, observation="o", action="x", next_observation="p")

    def ex(task: Task, label: str) -> Example:
        return Example(
            env="toy", instruction=label, style="task", trajectory_id=label, task_id=task.id,
            i=0, j=0, policy="gold", steps=[step],
        )  # fmt: skip

    gold, copy, other = ex(a, "g"), ex(fresh(a, origin="user"), "c"), ex(b, "o")
    stray = ex(Task(env="toy", instruction="from the docs"), "s")
    held = own_task_data([a, b], [gold, copy, other, stray])
    assert held == {a.id: frozenset({gold.id, copy.id}), b.id: frozenset({other.id})}


def test_unknown_arm_is_one_line(tmp_path: Path) -> None:
    args = ["experiment", "paper", "--model", "scripted", "--env", "toy", "--arms", "both,lora"]
    args += ["--set", f"run_root={tmp_path}", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "unknown arm(s) lora; arms: none" in result.output


def test_swap_gap_with_and_without_swap_arms() -> None:
    from lbi.replicate.page import swap_gap
    from lbi.types import EvalResult

    def results(arm: str, wins: int) -> list[EvalResult]:
        return [
            EvalResult(
                suite="s",
                variant=arm,
                task_id=f"t{i}",
                model="m",
                seed=0,
                success=i < wins,
                reward=float(i < wins),
                steps=1,
            )
            for i in range(10)
        ]

    base = results("none", 0) + results("both", 2) + results("gold", 6)
    assert swap_gap(base) == "Gap: gold 6/10 vs lbi 2/10 (+40.0 pp); no swap arm ran."
    text = swap_gap(base + results("swap-labels", 5) + results("swap-judge", 2))
    assert "swap-judge 2/10 (0%), swap-labels 5/10 (75%)" in text
    assert "most: **swap-labels**" in text and "single episodes" not in text
    small = results("none", 0) + results("both", 0) + results("gold", 1)
    text = swap_gap(small + results("swap-rollouts", 2))
    assert "swap-rollouts 2/10 (200%)" in text and "cannot rank the stages" in text
    flat = results("none", 0) + results("both", 3) + results("gold", 3)
    assert swap_gap(flat) == "Gap: gold 3/10 vs lbi 3/10 (+0.0 pp): no gap to recover."


def test_the_estimate_leaves_out_lora_on_gold_where_seeds_do_not_vary() -> None:
    from lbi.replicate.paper import PaperPlan, estimate

    plan = PaperPlan(name="p", suite="s", seeds=2, max_steps=3, only=["none", "gold", *LORA])
    assert set(estimate(plan, 5)["eval_calls_max"]) == {"none", "gold", *LORA}
    assert set(estimate(plan, 5, lora_gold=False)["eval_calls_max"]) == {"none", "gold", "lora-lbi"}
    assert estimate(plan, 5)["eval_calls_max"]["none"] == 5 * 2 * 3


def test_a_training_line_states_data_steps_and_held_out_loss() -> None:
    from lbi.config import TrainConfig
    from lbi.replicate.paper import training_line
    from lbi.train.options import TrainResult

    r = TrainResult(
        out_dir="o", base="b", adapter_dir="a", n_train=55, n_eval=3, steps=21, train_tokens=130485,
        eval_loss_before=2.2608, eval_loss_after=1.0516, tokens_per_s=81.4,
        options=TrainConfig(lr=2e-4, batch_size=8),
    )  # fmt: skip
    assert training_line("lora-lbi", r) == (
        "lora-lbi: 55 chats (3 held out), 21 steps, lr 0.0002, batch 8, 3 epochs; held-out loss "
        "2.261 → 1.052; 130485 tokens at 81 tok/s (cpu)."
    )


def test_the_page_counts_wins_a_floor_also_has() -> None:
    from lbi.replicate.page import floor_wins
    from lbi.types import EvalResult

    def result(arm: str, task: str, seed: int, success: bool) -> EvalResult:
        return EvalResult(suite="s", variant=arm, task_id=task, model="m", seed=seed,
                          success=success, reward=float(success), steps=1)  # fmt: skip

    floor = [result("floor:empty", "t1", 0, True), result("floor:empty", "t1", 1, False)]
    gold = [result("gold", "t1", 0, True), result("gold", "t1", 1, True)]
    gold += [result("gold", "t2", 0, True), result("none", "t2", 0, False)]
    assert floor_wins(floor + gold) == "Wins on episodes a floor also solves: gold 1 of 3."
    assert floor_wins(gold) is None  # no floor ran, or it solved nothing
