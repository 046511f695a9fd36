"""`site` on a user's own website that writes (tests/plugins/library: a form app over a SQLite
database the test makes): `--url`/`--docs` on envs check, synth and eval, and a suite file of 5
questions checked by SQL and 2 writes checked by the database's state afterwards."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.agents.react import EpisodeSettings, FixedPolicy, drive
from lbi.cli import app
from lbi.config import load_config
from lbi.envs.base import make_env
from lbi.envs.suite_file import SuiteFileEnv, with_suite
from lbi.run import RunContext
from lbi.types import Doc, EvalResult

pytestmark = pytest.mark.browser
LIBRARY = Path(__file__).parent / "plugins" / "library"
runner = CliRunner()

# Each write task's gold actions with one wrong value, and each question's wrong answer.
WRONG = {
    "count-books": ["send_msg_to_user('6')"],
    "dune-author": ["send_msg_to_user('Austen')"],
    "oldest-year": ["send_msg_to_user('1817')"],
    "solaris-copies": ["send_msg_to_user('3')"],
    "austen-titles": ["send_msg_to_user('Emma')"],
    "add-ulysses": [
        "fill('12', 'Ulysses')",
        "fill('15', 'Joyce')",
        "fill('18', '1923')",
        "click('19')",
        "send_msg_to_user('done')",
    ],
    "dune-copies": ["send_msg_to_user('done')"],  # says done, wrote nothing
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    sys.path.insert(0, str(LIBRARY.parent))
    from library.app import serve

    folder = tmp_path_factory.mktemp("library")
    for name in ("suite.yaml", "fixture.sql"):
        shutil.copy(LIBRARY / name, folder / name)
    con = sqlite3.connect(folder / "library.db")
    con.executescript((folder / "fixture.sql").read_text())
    con.close()
    url, stop = serve(folder / "library.db")
    yield url, folder / "suite.yaml"
    stop()
    sys.path.remove(str(LIBRARY.parent))


def _where(url: str) -> list[str]:
    return ["--url", url, "--docs", str(LIBRARY / "docs")]


def test_wrong_answers_and_wrong_writes_score_0(site: tuple[str, Path]) -> None:
    """(The gold solutions scoring 1.0 is the eval below: the scripted model replays them.)"""
    url, suite = site
    cfg = load_config(None, [f"env_options.site.url={url}"])
    env = with_suite(lambda: make_env("site", cfg), str(suite))()
    assert isinstance(env, SuiteFileEnv) and env.max_concurrency == 1  # it writes: one at a time
    db = suite.parent / "library.db"
    scores: dict[str, float] = {}
    try:
        for task in env.load_suite(str(suite)):
            actions = WRONG[task.name]
            settings = EpisodeSettings(max_steps=len(actions), seed=0)
            traj = asyncio.run(drive(env, task, "replay", settings, FixedPolicy(actions)))
            assert traj.terminated, task.name  # the answer or "done" ended it; the check scored
            scores[task.name] = traj.reward
            if task.name == "add-ulysses":  # the wrong write did land: its state is what failed
                con = sqlite3.connect(db)
                rows = con.execute("SELECT year FROM books WHERE title='Ulysses'").fetchall()
                con.close()
                assert rows == [(1923,)]
    finally:
        env.close()
    assert scores == dict.fromkeys(WRONG, 0.0)


def test_url_and_docs_reach_envs_check_synth_and_eval(
    site: tuple[str, Path], tmp_path: Path
) -> None:
    url, suite = site
    checked = runner.invoke(app, ["envs", "check", "site", *_where(url)])
    assert checked.exit_code == 0 and "site: passed" in checked.output, checked.output

    sets = ["--set", f"run_root={tmp_path / 'runs'}", "--set", "embed.name=hash"]
    synth = ["synth", "--env", "site", "--model", "scripted", "--run", "lib", *_where(url)]
    done = runner.invoke(app, [*synth, *sets, "--set", "synth.max_tasks=1"])
    assert done.exit_code == 0, done.output
    ev = ["eval", "--env", "site", "--model", "scripted", "--run", "lib", *_where(url)]
    ev += ["--suite", str(suite), "--variants", "none", "--set", "eval.max_steps=5"]
    done = runner.invoke(app, [*ev, *sets])
    assert done.exit_code == 0, done.output

    ctx = RunContext("lib", load_config(None, [f"run_root={tmp_path / 'runs'}"]), create=False)
    docs = {d.source for d in ctx.store.all(Doc)}
    results = ctx.store.all(EvalResult)
    ctx.store.close()
    assert any("library.md" in s for s in docs)  # the docs folder, not a crawl
    # The scripted model replays each task's gold actions: all 7 score 1.0; the floor none.
    assert {(r.task_name, r.reward) for r in results if r.variant == "none"} == {
        (name, 1.0) for name in WRONG
    }
    assert not any(r.success for r in results if r.variant.startswith("floor:"))


def test_a_reference_may_write_base_for_the_configured_url(site: tuple[str, Path]) -> None:
    """`{base}` in a reference is the site's URL, so the suite file is tied to no port."""
    url, suite = site
    moved = suite.parent / "base.yaml"
    moved.write_text(
        "db: library.db\n"
        "tasks:\n"
        "  - name: dune-copies-from-home\n"
        "    instruction: The library now owns 7 copies of Dune; record that, then say done.\n"
        "    setup: {db_fixture: fixture.sql}\n"
        "    check: {sql: \"SELECT copies FROM books WHERE title = 'Dune'\", expect: 7}\n"
        "    reference: [\"goto('{base}/copies')\", \"fill('12', 'Dune')\", \"fill('15', '7')\",\n"
        "                \"click('16')\", \"send_msg_to_user('done')\"]\n"
    )
    cfg = load_config(None, [f"env_options.site.url={url}"])
    env = with_suite(lambda: make_env("site", cfg), str(moved))()
    try:
        (task,) = env.load_suite(str(moved))
        assert task.reference[0] == f"goto('{url.rstrip('/')}/copies')"
        settings = EpisodeSettings(max_steps=len(task.reference), seed=0)
        traj = asyncio.run(drive(env, task, "replay", settings, FixedPolicy(task.reference)))
    finally:
        env.close()
    assert traj.reward == 1.0, [s.next_observation[:200] for s in traj.steps]
