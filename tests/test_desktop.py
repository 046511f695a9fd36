"""The desktop env: actions, checkers and docs without a display; then real episodes.

The episode test runs two child processes side by side (the env serves two at a time): between
them every suite task's gold script (must score 1.0); the first child also runs do-nothing
episodes (0.0), broken episodes and short ones, 20 episodes in all, then both are SIGKILLed in
the middle of an episode. Meanwhile the test itself runs `lbi envs check desktop` and a
scripted synth. Our processes carry an environment marker with a fixed owner token, so the
test finds every Xvfb, soffice, bus and AT-SPI process of ours, and none of anyone else's.
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
from typing import Any

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


@NEEDS_DESKTOP
@pytest.mark.desktop
def test_screenshot_on_request_and_with_every_observation() -> None:
    import base64
    import io

    from PIL import Image

    from lbi.envs.desktop.env import DesktopEnv

    light = next(t for t in tasks.load_suite(tasks.SUITE) if t.setup["start"] == "mousepad-notes")
    env = DesktopEnv()
    try:
        _, info = env.reset(light, seed=0)
        assert "screenshot_png_b64" not in info  # off by default: pictures cost bytes
        obs, _, _, _, info = env.step("screenshot()")
        assert obs.startswith("Screenshot taken") and "[1]" in obs and not info["error"]
        image = Image.open(io.BytesIO(base64.b64decode(info["screenshot_png_b64"])))
        assert image.format == "PNG" and image.size == (1280, 800)
        assert len(image.getcolors(1 << 16) or []) > 10  # the editor is drawn, not a blank screen
        _, _, _, _, info = env.step('key("End")')
        assert "screenshot_png_b64" not in info
    finally:
        env.close()
    env = DesktopEnv({"screenshot": True})
    try:
        _, info = env.reset(light, seed=0)
        _, _, _, _, step_info = env.step('key("End")')
        assert info["screenshot_png_b64"] and step_info["screenshot_png_b64"]
    finally:
        env.close()


CHILD = """
import json, os, sys, time
from lbi.envs.desktop.env import DesktopEnv
from lbi.envs.desktop import tasks
suite = {t.name: t for t in tasks.load_suite("desktop-basic")}
env = DesktopEnv()
for ep, (name, script) in enumerate(json.loads(sys.argv[1]) + [["calc-set-cell", []]]):
    env.reset(suite[name], seed=0)
    reward, errors = 0.0, 0
    for a in script:
        _, reward, done, _, info = env.step(a)
        errors += bool(info.get("error"))
        if done:
            break
    print(json.dumps({"ep": ep, "task": name, "n": len(script), "reward": reward,
                      "errors": errors}), flush=True)
parent = os.getppid()
while os.getppid() == parent:  # the last episode stays live until the test SIGKILLs this
    time.sleep(0.5)            # process; if the test itself is killed, this one ends too
"""
EPISODES = 20  # the lifecycle child's finished episodes before the live one


def _plans() -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """Gold scripts split over two children so that both take about as long; the first child
    also runs do-nothing, broken and short (left open) episodes up to EPISODES."""
    suite = tasks.load_suite(tasks.SUITE)
    office = [t for t in suite if starts.STARTS[t.setup["start"]].app != "mousepad"]
    light = [t for t in suite if starts.STARTS[t.setup["start"]].app == "mousepad"]
    cut = len(office) * 2 // 5  # a LibreOffice start costs about three Mousepad episodes
    first = [(t.name, t.reference) for t in office[:cut] + light]
    second = [(t.name, t.reference) for t in office[cut:]]
    first += [("calc-set-cell", ["done()"]), (light[0].name, ["done()"])]  # doing nothing
    first += [(light[0].name, ["click(9999)", "key('nokey+zz')", "type(1)"])]
    first += [(light[-1].name, ["", "done()"])]
    while len(first) < EPISODES:
        first.append((light[-1].name, ["key('ctrl+End')"]))  # left open, never finished
    return first, second


def _envs_check_and_synth(tmp_path: Path) -> None:
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


@NEEDS_DESKTOP
@pytest.mark.solo
@pytest.mark.slow
@pytest.mark.desktop
def test_gold_envs_check_synth_then_sigkill_leaves_nothing(tmp_path: Path) -> None:
    token = f"test-{uuid.uuid4().hex[:8]}"
    plans = _plans()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(plan)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, procs.OWNER_ENV: f"{token}{i}"},
        )
        for i, plan in enumerate(plans)
    ]
    recs: list[list[dict[str, Any]]] = [[], []]
    try:
        _envs_check_and_synth(tmp_path)  # while the children run their episodes
        for child, plan, got in zip(children, plans, recs, strict=True):
            assert child.stdout is not None
            for line in child.stdout:
                got.append(json.loads(line))
                if len(got) == len(plan) + 1:  # the plan done, the last episode is live
                    break
        for i in (0, 1):
            live = procs.marked(f"{token}{i}:")
            episodes = {p.environ()[procs.MARK] for p in live}
            assert episodes == {f"{token}{i}:{len(plans[i]) + 1}"}, episodes  # nothing older
            assert {"Xvfb", "soffice.bin", "at-spi-bus-launcher"} <= {p.name() for p in live}
        for child in children:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        deadline = time.monotonic() + 20
        while procs.marked(token) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert procs.marked(token) == []
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        procs.sweep(token)
    assert len(recs[0]) == EPISODES + 1
    suite = {t.name: t for t in tasks.load_suite(tasks.SUITE)}
    runs = [
        (plan[j], got[j]) for plan, got in zip(plans, recs, strict=True) for j in range(len(plan))
    ]
    gold = {r["task"]: r["reward"] for (name, script), r in runs if script == suite[name].reference}
    failed = {t: r for t, r in gold.items() if r != 1.0}
    assert not failed and set(gold) == set(suite), (failed, set(suite) - set(gold))
    nothing = [r["reward"] for (_, script), r in runs if script == ["done()"]]
    assert nothing == [0.0, 0.0]
    broken = [r for (_, script), r in runs if script and script[-1] in ("type(1)", "done()")]
    broken = [r for r in broken if r["n"] in (2, 3)]
    assert [(r["errors"], r["reward"]) for r in broken] == [(3, 0.0), (1, 0.0)], broken
