"""The evaluation report: files, their content, and the HTML page as a browser renders it."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from lbi.eval.contamination import overlap_report
from lbi.eval.report import VIEWER_URL, ReportMeta, ReportPaths, write_report
from lbi.types import EvalResult, Task

VARIANTS = ["none", "docs", "instruction", "observation", "model", "both", "distill"]
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


def suite_results(n_tasks: int = 23, seeds: int = 3) -> list[EvalResult]:
    """7 variants x 23 tasks x 3 seeds plus two floor policies: the size the report must handle."""
    rng = random.Random(3)
    base = [rng.random() for _ in range(n_tasks)]
    out = []
    for vi, v in enumerate(VARIANTS):
        for t in range(n_tasks):
            for s in range(seeds):
                ok = rng.random() < min(1.0, base[t] + 0.03 * vi)
                out.append(
                    EvalResult(
                        suite="spider-dev",
                        variant=v,
                        task_id=f"t{t:02d}",
                        task_name=f"spider_{t}",
                        model="smollm2",
                        seed=s,
                        success=ok,
                        reward=float(ok),
                        steps=rng.randint(1, 8),
                        calls=rng.randint(1, 8),
                        prompt_tokens=1000 + vi * 300,
                        completion_tokens=60,
                        latency_s=1.2,
                        cost_usd=0.001,
                    )
                )
    for policy, solved in (("floor:empty", {3, 9, 17}), ("floor:constant", {9})):
        for t in range(n_tasks):
            for s in range(seeds):
                out.append(
                    EvalResult(
                        suite="spider-dev",
                        variant=policy,
                        task_id=f"t{t:02d}",
                        task_name=f"spider_{t}",
                        model="smollm2",
                        seed=s,
                        success=t in solved,
                        reward=float(t in solved),
                        steps=1,
                    )
                )
    return out


def make_report(folder: Path) -> ReportPaths:
    bench = [
        Task(
            env="sql",
            origin="benchmark",
            name="spider_0",
            instruction="How many singers do we have?",
        )
    ]
    meta = ReportMeta(
        run_name="spider smoke",
        env="sql",
        suite="spider-dev",
        model="smollm2",
        temperature=0.7,
        seeds=3,
        dataset={"examples": 120, "accepted": "64%"},
    )
    return write_report(folder, suite_results(), meta, contamination=overlap_report(bench, []))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    return make_report(tmp_path_factory.mktemp("report"))


def test_report_files_exist(report: ReportPaths) -> None:
    for path in (report.markdown, report.report_json, report.chart, report.html):
        assert path.is_file() and path.stat().st_size > 0, path
        assert path.parent == report.folder
    assert report.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_has_the_table_floor_flips_and_temperature(report: ReportPaths) -> None:
    md = report.markdown.read_text()
    assert "| variant | tasks×seeds | success % [95% CI] | pass^k |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "23×3" in line]
    assert [r.split("|")[1].strip() for r in rows] == [*VARIANTS, "floor:constant", "floor:empty"]
    assert "| none | 23×3 |" in md and "| — |" in md  # the baseline has no delta
    assert "`floor:empty`: 13.0% — solves spider_3, spider_9, spider_17" in md
    assert "## Flips between seeds" in md and "**none** (" in md
    assert "temperature 0.7" in md
    assert "Contamination: 0/1 benchmark tasks" in md
    assert "MDE" in md


def test_json_holds_everything(report: ReportPaths) -> None:
    data = json.loads(report.report_json.read_text())
    assert data["meta"]["temperature"] == 0.7
    assert [s["variant"] for s in data["summaries"]][:7] == VARIANTS
    assert len(data["comparisons"]) == 6 and all(c["n_pairs"] == 69 for c in data["comparisons"])
    assert {f["policy"] for f in data["floor"]} == {"floor:empty", "floor:constant"}
    assert len(data["results"]) == 9 * 23 * 3
    assert data["contamination"]["n_benchmark"] == 1
    assert data["summaries"][0]["pass_k"].keys() == {"1", "2", "3"}


def test_html_is_self_contained(report: ReportPaths) -> None:
    html = report.html.read_text()
    assert 'id="results"' in html and 'id="grid"' in html
    assert 'src="data:image/png;base64,' in html
    # Nothing to fetch: the only URLs are links to `lbi view` on loopback.
    assert "http://" not in html.replace(VIEWER_URL, "") and "https://" not in html
    assert f'href="{VIEWER_URL}/eval"' in html
    assert html.count("◆") >= 3  # floor-solved tasks marked in the grid


@pytest.mark.browser
def test_html_renders_table_and_chart_in_chromium(report: ReportPaths) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "python playwright is missing: pip install playwright==1.44.0 (no `playwright install`)"
        )
    assert shutil.which(CHROMIUM)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(report.html.as_uri())
            page.wait_for_load_state("load")
            header = page.locator("#results thead th").all_inner_texts()
            body_rows = page.locator("#results tbody tr").count()
            first_cells = page.locator("#results tbody tr td:first-child").all_inner_texts()
            natural = page.evaluate(
                "() => { const i = document.getElementById('chart'); return [i.complete, i.naturalWidth, i.naturalHeight]; }"
            )
            grid_cells = page.locator("#grid tbody td").count()
        finally:
            browser.close()
    assert "success % [95% CI]" in header
    assert body_rows == 9 and first_cells[:7] == VARIANTS
    complete, width, height = natural
    assert complete and width > 0 and height > 0
    assert grid_cells == 9 * (23 + 1)


def test_report_when_every_variant_scores_zero_on_three_tasks(tmp_path: Path) -> None:
    """Wilson's lower bound comes out a hair above 0 at 0/3: the chart must still draw."""
    results = [
        EvalResult(
            suite="mcp",
            variant=v,
            task_id=f"t{t}",
            model="m",
            seed=0,
            success=False,
            reward=0.0,
            steps=3,
        )
        for v in ("none", "both", "floor:constant")
        for t in range(3)
    ]
    meta = ReportMeta(run_name="r", env="mcp", suite="mcp", model="m", temperature=0.0, seeds=1)
    paths = write_report(tmp_path, results, meta)
    assert paths.chart.stat().st_size > 0 and "none" in paths.markdown.read_text()
