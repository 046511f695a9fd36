"""The desktop env: actions, checkers and docs without a display; then real episodes.

The episode test runs in a child process: every suite task's gold script (must score 1.0),
do-nothing episodes (0.0) and broken episodes, 20 in all, then the child is SIGKILLed in the
middle of an episode. Our processes carry an environment marker with a fixed owner token, so
the test finds every Xvfb, soffice, bus and AT-SPI process of ours, and none of anyone else's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lbi.envs.desktop import actions, procs, starts, tasks
from lbi.envs.desktop.docs import desktop_docs, html_text

NEEDS_DESKTOP = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("soffice") and os.path.exists("/usr/bin/python3")),
    reason="desktop packages missing: run scripts/system-deps.sh",
)


def test_parse_actions() -> None:
    a = actions.parse('set_text(12, "hi")')
    assert isinstance(a, actions.Action) and a.verb == "set_text" and a.args == [12, "hi"]
    assert isinstance(actions.parse("click('Sort Ascending')"), actions.Action)
    assert isinstance(actions.parse("done()"), actions.Action)
    for bad, why in [
        ("", "empty"),
        ("click(", "cannot parse"),
        ("rm -rf /", "cannot parse"),
        ("os.system('x')", "not an action"),
        ("fly(3)", "unknown action"),
        ("click(1, 2)", "argument"),
        ("click_xy('a', 2)", "number"),
        ("type(x)", "literals"),
    ]:
        out = actions.parse(bad)
        assert isinstance(out, str) and why in out, (bad, out)


def test_suite_shape_and_untouched_files_fail_every_checker(tmp_path: Path) -> None:
    suite = tasks.load_suite(tasks.SUITE)
    apps = {starts.STARTS[t.setup["start"]].app for t in suite}
    assert len(suite) >= 12 and len(apps) >= 2, (len(suite), apps)
    for t in suite:  # doing nothing leaves the start document as it was
        d = tmp_path / t.name
        d.mkdir()
        starts.materialize(t.setup["start"], d)
        assert not tasks.check(t, d), t.name
        assert t.reference[-1] == "done()" and all(
            isinstance(actions.parse(a), actions.Action) for a in t.reference
        )


def test_docs_come_from_libreoffice_help() -> None:
    title, text = html_text(
        "<html><head><title>x</title></head><h1>Sorting</h1><p>Use <b>Data</b></p>"
    )
    assert title == "Sorting" and "# Sorting" in text and "Use Data" in text
    docs = desktop_docs(actions.action_space())
    assert docs[1].source == "desktop#actions" and "click(ID)" in docs[1].text
    if shutil.which("soffice"):
        help_docs = [d for d in docs if d.source.startswith("libreoffice-help/")]
        assert len(help_docs) > 100 and {d.setup["start"] for d in help_docs} == {
            "calc-scores",
            "writer-memo",
        }


CHILD = """
import json, sys
from lbi.envs.desktop.env import DesktopEnv
from lbi.envs.desktop import tasks
env = DesktopEnv()
suite = tasks.load_suite("desktop-basic")
plan = [(t, t.reference) for t in suite]
plan += [(suite[0], ["done()"]), (suite[-1], ["done()"])]  # doing nothing
plan += [(suite[7], ["click(9999)", "key('nokey+zz')", "type(1)"]), (suite[-1], ["", "done()"])]
while len(plan) < 20:
    plan.append((suite[-2], ["key('ctrl+End')"]))  # an episode left open (never finished)
for ep, (task, script) in enumerate(plan + [(suite[0], [])]):
    env.reset(task, seed=0)
    reward, errors = 0.0, 0
    for a in script:
        _, reward, done, _, info = env.step(a)
        errors += bool(info.get("error"))
        if done:
            break
    print(json.dumps({"ep": ep, "task": task.name, "n": len(script), "reward": reward,
                      "errors": errors, "live": len(env.session.procs)}), flush=True)
"""


@NEEDS_DESKTOP
@pytest.mark.slow
@pytest.mark.desktop
def test_gold_scores_then_sigkill_leaves_nothing() -> None:
    token = f"test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, procs.OWNER_ENV: token},
    )
    recs = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            recs.append(json.loads(line))
            if len(recs) == 21:  # 20 episodes done, the 21st is live
                break
        live = procs.marked(token + ":")
        episodes = {p.environ()[procs.MARK] for p in live}
        assert episodes == {f"{token}:21"}, episodes  # nothing left of episodes 1..20
        assert {"Xvfb", "soffice.bin", "at-spi-bus-launcher"} <= {p.name() for p in live}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while procs.marked(token + ":") and time.monotonic() < deadline:
            time.sleep(0.25)
        assert procs.marked(token + ":") == []
    finally:
        if proc.poll() is None:
            proc.kill()
        procs.sweep(token + ":")
    n_suite = len(tasks.load_suite(tasks.SUITE))
    gold = {r["task"]: r["reward"] for r in recs[:n_suite]}
    failed = {t: r for t, r in gold.items() if r != 1.0}
    assert not failed and len(gold) == n_suite, failed
    nothing = recs[n_suite : n_suite + 2]
    assert [r["reward"] for r in nothing] == [0.0, 0.0]
    broken = recs[n_suite + 2 : n_suite + 4]
    assert broken[0]["errors"] == 3 and broken[1]["errors"] == 1 and broken[1]["reward"] == 0.0


@NEEDS_DESKTOP
@pytest.mark.slow
@pytest.mark.desktop
def test_envs_check_and_scripted_synth(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lbi.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["envs", "check", "desktop"])
    assert r.exit_code == 0 and "desktop: passed" in r.output, r.output
    base = ["--env", "desktop", "--model", "scripted", "--run", "d"]
    sets = ["run_root=" + str(tmp_path), "embed.name=hash", "synth.max_chunks=2"]
    sets += ["synth.max_tasks=2", "synth.max_steps=3"]
    r = runner.invoke(app, ["synth", *base, *[x for s in sets for x in ("--set", s)]])
    assert r.exit_code == 0, r.output
    assert "trajectories" in r.output
