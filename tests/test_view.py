"""`lbi view` on a run made with the scripted model: every page in Debian Chromium, the click path
from the overview to a window's verdicts, search, filters, markup shown as text, read-only."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import load_config
from lbi.eval.report import VIEWER_URL
from lbi.pipeline import synth
from lbi.run import RunContext
from lbi.store import RunStore
from lbi.types import Example, Step, Task, Trajectory, Verdict
from lbi.view.queries import Filters, RunView
from lbi.view.serve import ViewError, check_host, opened, serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCRIPT_OBS = "<script>alert(1)</script>"
IMG_INSTRUCTION = '"><img src=x onerror=alert(1)>'
SETS = ["--set", "embed.name=hash"]
UNNATURAL = "reads like a log line, not a request"
OTHER = "<b>airplane mode off</b>"  # what a simulated customer's tool call returned


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth + eval (none vs both, one seed) on the toy environment; the scripted judge accepts
    everything, so five verdicts are replaced by rejections, and two hostile records added."""
    root = tmp_path_factory.mktemp("view") / "runs"
    base = ["--env", "toy", "--model", "scripted", "--run", "v", "--set", f"run_root={root}"]
    runner = CliRunner()
    r = runner.invoke(app, ["synth", *base, *SETS])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", *base, *SETS, "--variants", "none,both", "--seeds", "1"])
    assert r.exit_code == 0, r.output
    with RunStore(root / "v") as store:
        task = Task(env="toy", instruction=IMG_INSTRUCTION, origin="user")
        step = Step(index=0, observation=SCRIPT_OBS, action="list", next_observation="a=1")
        step.other_actions = [
            {"actor": "user", "action": "toggle_airplane_mode()", "result": OTHER}
        ]
        traj = Trajectory(task_id=task.id, env="toy", instruction=IMG_INSTRUCTION, model="x")
        traj.steps = [step]
        ex = Example(
            env="toy",
            instruction=IMG_INSTRUCTION,
            style="task",
            trajectory_id=traj.id,
            task_id=task.id,
            i=0,
            j=0,
            policy="batched",
            steps=[step],
        )
        store.put([task, traj, ex])
        judged = sorted(store.all(Verdict), key=lambda v: v.id)[:5]
        for v in judged:
            v.criteria["natural"] = False
            v.reasons["natural"] = UNNATURAL
            v.accept = False
        store.put(judged, replace=True)
    return root


@pytest.fixture(scope="module")
def view(run_root: Path) -> Iterator[RunView]:
    with opened("v", None, [f"run_root={run_root}"]) as v:
        yield v


@pytest.fixture(scope="module")
def url(view: RunView) -> Iterator[str]:
    with serving(view) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1100, "height": 760})
    p.set_default_timeout(10_000)
    dialogs: list[str] = []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.dialogs = dialogs
    yield p
    p.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Screenshots land here; with LBI_ARTIFACTS set they are copied there too."""
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    dest = os.environ.get("LBI_ARTIFACTS")
    if dest:
        target = Path(dest) / "view"
        target.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, target / png.name)


def _ids(run_root: Path) -> dict[str, str]:
    cfg = load_config(None, [f"run_root={run_root}", "embed.name=hash"])
    ctx = RunContext("v", cfg, create=False)
    tasks = synth.synth_tasks(ctx)
    traj = next(t for t in ctx.store.all(Trajectory) if t.task_id == tasks[0].id)
    ex = next(e for e in ctx.store.all(Example) if e.trajectory_id == traj.id)
    bench = next(t for t in ctx.store.all(Task) if t.origin == "benchmark")
    doc_id = tasks[0].doc_id or ""
    ctx.store.close()
    return {
        "task": tasks[0].id,
        "traj": traj.id,
        "ex": ex.id,
        "window": f"{ex.i}-{ex.j}",
        "bench": bench.id,
        "doc": doc_id,
    }


@pytest.mark.browser
def test_every_page_type_opens(run_root: Path, url: str, page: Any, shots: Path) -> None:
    ids = _ids(run_root)
    pages = {
        "overview": ("/", "#table1"),
        "docs": ("/docs", "#docs"),
        "doc": (f"/doc/{ids['doc']}", "#tasks"),
        "tasks": ("/tasks", "#tasks"),
        "task": (f"/task/{ids['task']}", "#trajs"),
        "trajectory": (f"/trajectory/{ids['traj']}", "#windows"),
        "window": (f"/trajectory/{ids['traj']}/window/{ids['window']}", "table.verdicts"),
        "examples": ("/examples", "#examples"),
        "eval": ("/eval", "#grid"),
        "episodes": (f"/eval/task/{ids['bench']}?v=none&v=both&seed=0", "div.episode"),
        "report": ("/report", "#results"),
    }
    for name, (path, selector) in pages.items():
        response = page.goto(url + path)
        assert response.status == 200, (name, response.status)
        assert page.locator(selector).count() >= 1, name
        page.screenshot(path=str(shots / f"{name}.png"))
    assert len(list(shots.glob("*.png"))) == len(pages)
    # the episodes page shows both variants, and `both` retrieved examples at its steps
    page.goto(url + f"/eval/task/{ids['bench']}?v=none&v=both&seed=0")
    assert page.locator("div.episode h2").all_inner_texts() == ["none", "both"]
    counts = page.locator("div[data-variant=both] details.retrieved summary").all_inner_texts()
    assert counts and all("in the prompt" in c for c in counts)
    assert any(not c.startswith(("step 0: 0", "step 1: 0")) for c in counts)


@pytest.mark.browser
def test_click_overview_task_trajectory_window_verdicts(url: str, page: Any, shots: Path) -> None:
    page.goto(url + "/")
    page.click("#links a[href='/tasks']")
    page.locator("#tasks tbody a[href^='/task/']").first.click()
    instruction = page.locator("#instruction").inner_text()
    page.locator("#trajs a[href^='/trajectory/']").first.click()
    assert page.locator("#instruction").inner_text() == instruction
    assert page.locator("div.step").count() >= 1
    assert page.locator("details.messages").count() >= 1  # the exact request, folded
    page.locator("#windows a").first.click()
    assert "/window/" in page.url
    verdict_rows = page.locator("table.verdicts tbody tr")
    assert verdict_rows.count() >= 4
    criteria = page.locator("table.verdicts tbody tr td:nth-child(2)").all_inner_texts()
    assert {"achieves", "coherent", "natural", "reasonable"} <= set(criteria)
    assert page.locator("p.decision").first.inner_text().startswith(("kept", "rejected"))
    page.screenshot(path=str(shots / "click-window.png"))


@pytest.mark.browser
def test_search_finds_a_known_instruction(view: RunView, url: str, page: Any) -> None:
    known = view.examples(Filters(), 1)["rows"][3]
    page.goto(url + "/examples")
    total = int(page.locator("#total").inner_text().split()[0])
    page.fill("input[name=q]", known["instruction"])
    page.click("form.filters button")
    found = page.locator("#examples tbody td:first-child").all_inner_texts()
    assert known["instruction"] in found
    assert int(page.locator("#total").inner_text().split()[0]) < total


@pytest.mark.browser
def test_a_filter_narrows_the_list(url: str, page: Any, shots: Path) -> None:
    page.goto(url + "/examples")
    total = int(page.locator("#total").inner_text().split()[0])
    page.select_option("select[name=kept]", "rejected")
    page.click("form.filters button")
    rejected = int(page.locator("#total").inner_text().split()[0])
    assert 0 < rejected < total
    assert set(page.locator("#examples tbody td:last-child").all_inner_texts()) != set()
    page.select_option("select[name=criterion]", "natural")
    page.click("form.filters button")
    assert 0 < int(page.locator("#total").inner_text().split()[0]) <= rejected
    assert UNNATURAL in page.locator("#examples tbody").inner_text()
    page.goto(url + "/examples?max_steps=1")
    assert 0 < int(page.locator("#total").inner_text().split()[0]) < total
    page.screenshot(path=str(shots / "examples-filtered.png"))


@pytest.mark.browser
def test_markup_in_data_shows_as_text(url: str, page: Any) -> None:
    page.goto(url + "/examples?q=onerror")
    assert page.locator("#examples tbody td:first-child").all_inner_texts() == [IMG_INSTRUCTION]
    page.locator("#examples tbody a").first.click()
    assert page.locator("h3 .instruction").inner_text() == IMG_INSTRUCTION
    page.locator("a[href^='/trajectory/']").first.click()
    assert page.locator("pre.obs").first.inner_text() == SCRIPT_OBS
    other = page.locator("ul.others li").first.inner_text()
    assert "user" in other and "toggle_airplane_mode()" in other and OTHER in other
    assert page.locator("b").count() == 0  # the customer's result is text, not markup
    assert page.locator("img").count() == 0 and page.locator("body script").count() == 0
    assert page.dialogs == []


def test_no_endpoint_writes(run_root: Path, url: str, view: RunView) -> None:
    db = run_root / "v" / "run.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        req = urllib.request.Request(url + "/examples", data=b"x", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        assert e.value.code == 405
    with urllib.request.urlopen(url + "/") as r:
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # the viewer's connections cannot write even if code tried
    from lbi.view.source import ReadOnlyStore, connect_ro

    c = connect_ro(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        c.execute("INSERT INTO meta(key, value) VALUES ('x', '1')")
    c.close()
    with ReadOnlyStore(db.parent) as store, pytest.raises(PermissionError):
        store.set_meta("x", 1)


def test_overview_is_lbi_stats_row(run_root: Path, view: RunView) -> None:
    from lbi.run import existing_run

    ctx = existing_run("v", None, [f"run_root={run_root}"])  # what `lbi stats v` opens
    expected = synth.stats(ctx)
    # (Playwright's sync API holds this thread's event loop: close the doors on another thread)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ctx.aclose()).result()
    got = view.overview()["stats"]
    assert got == {**expected, "stages": got["stages"]}  # spend is the same meta, read back
    assert got["stages"] == expected["stages"] and 0 < got["kept_examples"] < got["raw_examples"]


def test_report_and_viewer_link_each_other(run_root: Path, url: str) -> None:
    from lbi.view.app import VIEWER_URL as served

    assert served == VIEWER_URL
    html = (run_root / "v" / "report" / "report.html").read_text()
    assert f'href="{VIEWER_URL}/eval"' in html and "lbi view v" in html
    with urllib.request.urlopen(url + "/report") as r:
        body = r.read().decode()
    assert 'href="/eval"' in body and VIEWER_URL not in body
    with urllib.request.urlopen(url + "/") as r:
        assert 'href="/report"' in r.read().decode()


def test_non_loopback_address_needs_a_flag(run_root: Path) -> None:
    check_host("127.0.0.1", False)
    check_host("::1", False)
    with pytest.raises(ViewError, match="--public"):
        check_host("0.0.0.0", False)
    check_host("0.0.0.0", True)
    r = CliRunner().invoke(app, ["view", "v", "--host", "0.0.0.0", "--set", f"run_root={run_root}"])
    assert r.exit_code == 2 and "--public" in r.output


def test_ctrl_c_stops_the_viewer_without_a_resume_message(run_root: Path) -> None:
    import os
    import sys

    from childproc import view_then_ctrl_c

    src = str(Path(__file__).resolve().parents[1] / "src")
    argv = [
        sys.executable,
        "-m",
        "lbi",
        "view",
        "v",
        "--port",
        "0",
        "--set",
        f"run_root={run_root}",
    ]
    _, printed = view_then_ctrl_c(argv, None, {**os.environ, "PYTHONPATH": src, "NO_COLOR": "1"})
    assert "stopped" in printed and "resume" not in printed


def test_the_derived_index_is_kept_for_the_next_start_until_the_run_changes(
    run_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbi.view import serve
    from lbi.view.index import build_index

    root = tmp_path / "runs"
    shutil.copytree(run_root / "v", root / "v")
    builds: list[Path] = []

    def counted(ctx: Any, path: Path) -> dict[str, Any]:
        builds.append(path)
        return build_index(ctx, path)

    monkeypatch.setattr(serve, "build_index", counted)
    sets = [f"run_root={root}"]
    with opened("v", None, sets) as first:
        pass
    with opened("v", None, sets) as second:
        assert second.index == first.index and first.index.is_file()
    assert len(builds) == 1  # the second start reused it
    with RunStore(root / "v") as store:  # the run grows: the next start builds again
        store.put([Task(env="toy", instruction="one more task")])
    with opened("v", None, sets) as third:
        assert third.index != first.index
    assert len(builds) == 2
    cache = root / ".cache" / "view"
    other = cache / "v-other-0123456789abcdef.sqlite"  # another run whose name starts with "v-"
    other.write_bytes(b"")
    with opened("v", None, [*sets, "synth.combine=majority"]) as fourth:  # other settings
        assert fourth.index != third.index
    assert len(builds) == 3
    with RunStore(root / "v") as store:
        store.put([Task(env="toy", instruction="and one more")])
    with opened("v", None, sets) as fifth:
        pass
    # The newest three of this run stay (a viewer left open may serve one); others' are kept.
    names = {p.name for p in cache.iterdir()}
    assert names == {other.name, third.index.name, fourth.index.name, fifth.index.name}
