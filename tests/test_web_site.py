"""The `site` environment on a local datasette: suite, checks, docs, options, envs check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.envs.base import EnvError, make_env
from lbi.envs.check import check_env
from lbi.envs.web.site import SiteEnv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env() -> Iterator[SiteEnv]:
    e = SiteEnv()
    yield e
    e.close()


def _run(env: SiteEnv, task_name: str, actions: list[str]) -> tuple[float, bool]:
    task = next(t for t in env.load_suite("site-db") if t.name == task_name)
    env.reset(task)
    reward, done = 0.0, False
    for a in actions:
        _, reward, done, _, _ = env.step(a)
        if done:
            break
    return reward, done


def test_every_reference_solution_scores_1(env: SiteEnv) -> None:
    tasks = env.load_suite("site-db")
    assert {t.name.rsplit("-", 1)[1] for t in tasks} == {"open", "count", "filter", "max"}
    assert {t.name: _run(env, t.name, t.reference)[0] for t in tasks} == {
        t.name: 1.0 for t in tasks
    }


def test_wrong_answers_and_wrong_pages_score_0(env: SiteEnv) -> None:
    assert _run(env, "products-count", ["send_msg_to_user('3')"]) == (0.0, True)
    assert _run(env, "customers-open", [f"goto('{env.base}/shop/orders')"]) == (0.0, False)
    # a filter on the wrong value shows rows, but not the wanted ones
    assert _run(env, "products-filter", [f"goto('{env.base}/shop/products?category=nothing')"]) == (
        0.0,
        False,
    )


def test_agent_can_click_its_way_by_element_id(env: SiteEnv) -> None:
    task = next(t for t in env.load_suite("site-db") if t.name == "customers-open")
    obs, _ = env.reset(task)
    line = next(ln for ln in obs.splitlines() if "link 'customers'" in ln)
    bid = line.split("[")[1].split("]")[0]
    _, reward, done, _, info = env.step(f"click('{bid}')")
    assert (reward, done, info["error"]) == (1.0, True, False)


def test_leaving_the_site_is_refused(env: SiteEnv) -> None:
    env.reset(env.load_suite("site-db")[0])
    obs, _, _, _, info = env.step("goto('file:///etc/hostname')")
    assert info["error"] and "only pages under" in obs


def test_docs_come_from_crawling_when_there_is_no_folder(env: SiteEnv) -> None:
    docs = env.docs()
    sources = {d.source for d in docs}
    assert {"web#actions", "site/", "site/shop/products"} <= sources
    products = next(d for d in docs if d.source == "site/shop/products")
    assert "Forms:" in products.text and "_filter_column" in products.text


def test_options_url_and_docs_dir(env: SiteEnv, tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Shop guide\n\nProducts are listed under /shop/products.")
    cfg = Config(env_options={"site": {"url": env.start, "docs_dir": str(tmp_path)}})
    other = make_env("site", cfg)
    try:
        assert [d.title for d in other.docs()] == ["Web actions", "guide"]
        assert other.suites() == [] and other.sample_tasks()[0].origin == "explore"
    finally:
        other.close()
    with pytest.raises(EnvError, match="unknown site option"):
        make_env("site", Config(env_options={"site": {"port": 1}}))


def test_check_env_passes_with_no_options() -> None:
    report = check_env(lambda: make_env("site", Config()), cycles=2)
    assert report.ok, [(r.name, r.detail) for r in report.results if not r.ok]
