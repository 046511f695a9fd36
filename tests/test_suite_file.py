"""Suites from a file and the grown-up Gymnasium adapter, on a text game written in tests/
(tests/plugins/textgame.py: variations, a score, an "Unknown command" observation)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.agents.react import EpisodeSettings, FixedPolicy, drive
from lbi.cli import app
from lbi.config import load_config
from lbi.envs.base import EnvError, make_env
from lbi.envs.suite_file import Suite, SuiteFileEnv, final_answer, same, with_suite
from lbi.run import RunContext
from lbi.types import EvalResult, Task, Trajectory

PLUGINS = Path(__file__).parent / "plugins"
SUITE = PLUGINS / "guess_suite.jsonl"
GAME = "gym:textgame:LbiGuess-v0"
GYM = [
    f"env_options.gym.docs={PLUGINS / 'docs_guess' / 'guess.md'}",
    "env_options.gym.examples=[guess e, guess a]",
    "env_options.gym.error_pattern=unknown command",
]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _game_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def _sets(*sets: str) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


def _replay(env: SuiteFileEnv, task: Task, actions: list[str]) -> Trajectory:
    settings = EpisodeSettings(max_steps=max(1, len(actions)), seed=0)
    return asyncio.run(drive(env, task, "replay", settings, FixedPolicy(actions)))


def test_the_game_goes_through_check_synth_and_eval_on_a_suite_file(tmp_path: Path) -> None:
    root = f"run_root={tmp_path / 'runs'}"
    checked = runner.invoke(app, ["envs", "check", GAME, "--suite", str(SUITE), *_sets(*GYM)])
    assert checked.exit_code == 0 and f"{GAME}: passed" in checked.output, checked.output
    assert "reference solutions score  4/4" in checked.output

    synth = ["synth", "--env", GAME, "--model", "scripted", "--run", "g"]
    synth += _sets(root, "embed.name=hash", "synth.max_tasks=2", *GYM)
    done = runner.invoke(app, synth)
    assert done.exit_code == 0, done.output
    ev = ["eval", "--env", GAME, "--model", "scripted", "--run", "g", "--suite", str(SUITE)]
    ev += ["--variants", "none", *_sets(root, "embed.name=hash", *GYM)]
    done = runner.invoke(app, ev)
    assert done.exit_code == 0, done.output
    assert "contamination:" in done.output and "floor:constant" in done.output

    ctx = RunContext("g", load_config(None, [root]), create=False)
    results = {(r.variant, r.task_name): r for r in ctx.store.all(EvalResult)}
    ctx.store.close()
    names = [json.loads(line)["name"] for line in SUITE.read_text().splitlines()]
    # The scripted model replays each reference: every check (info, score, return, python)
    # counts the solved game; the constant floor ("guess e" forever) solves none of them.
    assert {n: results["none", n].success for n in names} == dict.fromkeys(names, True)
    assert not any(results["floor:constant", n].success for n in names)
    assert all(r.suite == str(SUITE) for r in results.values())


def test_variation_reaches_reset_and_wrong_play_scores_zero() -> None:
    cfg = load_config(None, GYM)
    env = with_suite(lambda: make_env(GAME, cfg), str(SUITE))()
    assert isinstance(env, SuiteFileEnv)
    try:
        tasks = {t.name: t for t in env.load_suite(str(SUITE))}
        obs, _ = env.reset(tasks["owl-by-score"], seed=0)
        assert obs == "word: _ _ _"
        assert env.step("guess w")[0] == "word: _ w _"  # variation 2 is "owl", not seed 0's "cat"
        for name, task in tasks.items():
            gold = _replay(env, task, task.reference)
            assert gold.success and gold.reward == 1.0, name
            # A wrong game: the right number of guesses, but the wrong letters.
            wrong = _replay(env, task, [*["guess z", "guess q", "guess x"], task.reference[0]])
            assert not wrong.success and wrong.reward == 0.0, name
    finally:
        env.close()


def test_success_by_score_or_info_and_error_pattern_and_valid_actions() -> None:
    task = Task(env=GAME, instruction="play", setup={"variation": 0})
    by_score = make_env(GAME, load_config(None, [*GYM, "env_options.gym.success_score=0.375"]))
    by_info = make_env(GAME, load_config(None, [*GYM, "env_options.gym.success_info=won"]))
    for env in (by_score, by_info):
        traj = asyncio.run(
            drive(
                env,
                task,
                "r",
                EpisodeSettings(max_steps=5),
                FixedPolicy(["guess c", "hello", "guess a", "guess t"]),
            )
        )
        assert traj.success and traj.reward == 1.0  # the game's own last reward is 0.125
        assert traj.steps[0].reward == 0.0 and traj.steps[1].error  # "Unknown command" is an error
        env.close()
    plain = make_env(GAME, load_config(None, GYM))
    traj = asyncio.run(
        drive(
            plain,
            task,
            "r",
            EpisodeSettings(max_steps=3),
            FixedPolicy(["guess c", "guess a", "guess t"]),
        )
    )
    assert not traj.success and traj.reward == 0.125  # without an option: the raw reward
    plain.close()

    listed = make_env(GAME, load_config(None, [*GYM, "env_options.gym.actions_info=valid"]))
    obs, _ = listed.reset(task, seed=0)
    assert "Valid actions: guess a, guess b" in obs
    listed.step("guess c")
    obs, _, _, _, info = listed.step("guess c")  # already tried: no longer in the list
    assert info["error"] and "not a valid action" in obs
    listed.close()
    with pytest.raises(EnvError, match=r"env_options\.gym\.sucess"):
        make_env(GAME, load_config(None, [*GYM, "env_options.gym.sucess=1"]))


def test_suite_file_checks_and_errors(tmp_path: Path) -> None:
    assert final_answer("send_msg_to_user('24')") == "24"
    assert final_answer('{"name": "respond", "arguments": {"content": "Paris"}}') == "Paris"
    assert final_answer("submit 7") == "7" and final_answer("just text") == "just text"
    assert same("1,000.", "1000") and same(" The Cat ", "the cat") and not same("3", "4")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x"}\n')
    with pytest.raises(EnvError, match="needs a check"):
        Suite(bad, "toy")
    bad.write_text('{"instruction": "x", "check": {"python": "nowhere_mod:fn"}}\n')
    with pytest.raises(EnvError, match="python check"):
        Suite(bad, "toy")
    yaml_suite = tmp_path / "s.yaml"
    yaml_suite.write_text("db: shop.db\ntasks:\n  - instruction: Count\n    check: {answer: '3'}\n")
    suite = Suite(yaml_suite, "toy")
    assert suite.db == "shop.db" and suite.tasks[0].origin == "benchmark"


def test_a_grammar_from_the_options_keeps_the_local_model_to_valid_actions(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from lbi.models.assets import smollm2_gguf_path
    from lbi.models.base import ModelError

    try:
        smollm2_gguf_path()
    except ModelError as e:
        pytest.skip(str(e))
    grammar = 'env_options.gym.grammar="guess " [a-z]'
    args = ["episode", "--env", GAME, "--model", "local", "--suite", str(SUITE), "--task", "1"]
    args += ["--max-steps", "2"]
    args += _sets(*GYM, grammar, f"run_root={tmp_path}", "models.local.threads=1")
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    actions = re.findall(r"ACTION: (.*)", done.output)
    assert len(actions) == 2 and all(re.fullmatch(r"guess [a-z]", a) for a in actions), actions
    assert "could not read your answer" not in done.output
