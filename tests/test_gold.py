"""Gold as a policy and a labeller; training from chat files and other runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.agents.gold import GOLD_MODEL, has_gold
from lbi.cli import app
from lbi.envs.toy import ToyEnv
from lbi.pipeline.gold import gold_examples, gold_rollouts, true_label
from lbi.train.options import TrainError
from lbi.train.sources import chats_from_examples, chats_from_files


def test_gold_policy_scores_1_on_the_tasks_it_was_built_from() -> None:
    tasks = ToyEnv().load_suite("toy-5")
    assert all(has_gold(ToyEnv(), t) for t in tasks)
    trajs = asyncio.run(gold_rollouts(ToyEnv, tasks, seeds=[0, 1]))
    assert len(trajs) == 10 and all(t.success and t.reward == 1.0 for t in trajs)
    assert {t.model for t in trajs} == {GOLD_MODEL}
    examples = gold_examples(trajs)
    assert len(examples) == 10 and all(e.policy == "gold" for e in examples)
    assert [e.instruction for e in examples[:1]] == [tasks[0].instruction]
    assert all(e.steps == t.steps for e, t in zip(examples, trajs, strict=True))


def test_true_label_reads_the_web_goal_line() -> None:
    trajs = asyncio.run(gold_rollouts(ToyEnv, ToyEnv().load_suite("toy-5")[:1], seeds=[0]))
    step = trajs[0].steps[0].model_copy(update={"observation": "Goal: Click on Tab #3.\nURL: x"})
    web = trajs[0].model_copy(update={"steps": [step]})
    assert true_label(web) == "Click on Tab #3." and true_label(trajs[0]) == trajs[0].instruction


def test_gold_chats_train_from_a_file_and_bad_files_fail_clearly(tmp_path: Path) -> None:
    env = ToyEnv()
    trajs = asyncio.run(gold_rollouts(ToyEnv, env.load_suite("toy-5"), seeds=[0]))
    chats = chats_from_examples(gold_examples(trajs), env.action_space())
    assert len(chats) == sum(len(t.steps) for t in trajs)
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in chats))
    assert chats_from_files([path]) == chats
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(TrainError, match="assistant turn"):
        chats_from_files([bad])
    result = CliRunner().invoke(app, ["train", "--chats", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "assistant turn" in result.output
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code != 0 and "--chats" in result.output


def test_gold_trajectories_are_stored_and_a_rerun_drives_none_again(tmp_path: Path) -> None:
    from lbi.config import load_config
    from lbi.replicate.arms import gold_data

    cfg = load_config(None, [f"run_root={tmp_path}", "env=toy", "model=scripted"])
    tasks = ToyEnv().load_suite("toy-5")[:2]
    made: list[ToyEnv] = []

    def make_env() -> ToyEnv:
        made.append(ToyEnv())
        return made[-1]

    first = asyncio.run(gold_data(cfg, "p", make_env, tasks, [1000, 1001], 4))
    assert len(made) == 4 and [(t.task_id, t.seed) for t in first] == [
        (task.id, seed) for task in tasks for seed in (1000, 1001)
    ]
    again = asyncio.run(gold_data(cfg, "p", make_env, tasks, [1000, 1001], 4))
    assert len(made) == 4 and again == first  # read back from run p-gold-rollouts, not rerun
    more = asyncio.run(gold_data(cfg, "p", make_env, tasks, [1000, 1001, 1002], 4))
    assert len(made) == 6 and [t.seed for t in more] == [1000, 1001, 1002] * 2
