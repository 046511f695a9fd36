"""`site`: any website on localhost, observed and driven like MiniWoB.

Options (`config.env_options["site"]`): `url` (start page of a running site), `docs_dir` (the
site's documentation: a folder, a file or `module:ATTR`; without it the site is crawled), `db`
(a SQLite file to serve with datasette instead of our demo shop), `max_chars` (observation budget), `screenshot`, `visible_only`, `max_pages` (crawl bound).
With no options we build the demo shop database and serve it with datasette on 127.0.0.1,
so `lbi envs check site` runs offline; a served database also yields a benchmark suite whose
answers come from SQL (site_tasks.py). A user's own URL has no suite, only exploration.

The agent answers questions with `send_msg_to_user(...)`, which ends the episode; navigation
and filter tasks end as soon as the page is in the wanted state.

The site is treated as hostile and so are the agent's actions: every request of an episode
must stay on the origin of `url` (an http(s) address; confine.py), and a page too large to
observe is cut, saying so (bound.py).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.data import Shipped
from lbi.envs.docs import docs_from_source
from lbi.envs.web import actions
from lbi.envs.web.confine import Confinement
from lbi.envs.web.crawl import site_docs
from lbi.envs.web.docs import action_reference
from lbi.envs.web.server import demo_db, shared_server
from lbi.envs.web.session import SESSION_OPTIONS, PageSession, session_options
from lbi.envs.web.site_tasks import same_answer, suite_from_db
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

OPTIONS = {"url", "docs_dir", "db", "max_pages", *SESSION_OPTIONS}
VIEWPORT = {"width": 1280, "height": 720}
EXAMPLES = [
    "click('12')",
    "fill('5', 'tools')",
    "goto('http://127.0.0.1:8001/shop')",
    "send_msg_to_user('24')",
]
_ROWS_JS = """(col) => {
  const heads = [...document.querySelectorAll('table.rows-and-columns thead th')];
  const i = heads.findIndex(th => th.dataset.column === col);
  if (i < 0) return null;
  return [...document.querySelectorAll('table.rows-and-columns tbody tr')]
    .map(tr => tr.children[i] ? tr.children[i].textContent.trim() : null);
}"""


class SiteEnv:
    name = "site"
    max_concurrency = 4

    def __init__(
        self,
        url: str | None = None,
        docs_dir: str | None = None,
        db: str | None = None,
        max_chars: int = 6000,
        screenshot: bool = False,
        visible_only: bool = False,
        max_pages: int = 25,
    ) -> None:
        if url and db:
            raise EnvError(
                "site: give `url` (a running site) or `db` (a SQLite file to serve), not both"
            )
        if docs_dir and ":" not in docs_dir and not Path(docs_dir).exists():
            raise EnvError(
                f"site: no documentation at {docs_dir} (a folder, a file or module:ATTR)"
            )
        self.db = None if url else (Path(db) if db else demo_db())
        self.start = url or shared_server(self.db).url + "/"  # type: ignore[arg-type]
        # Every request of an episode must stay on this origin (confine.py); a file:// site
        # would let every local file through, so only http(s) is accepted.
        self.confine = Confinement(self.start)
        self.base = "{}://{}".format(*urlsplit(self.start)[:2])
        self.docs_dir, self.max_pages = docs_dir, max_pages
        self.session = PageSession(
            actions.SITE_SUBSETS,
            max_chars=max_chars,
            screenshot=screenshot,
            visible_only=visible_only,
            confine=self.confine,
        )
        self.task: Task | None = None
        self._docs: list[Doc] | None = None

    def docs(self) -> list[Doc]:
        if self._docs is None:
            pages = (
                docs_from_source(self.name, self.docs_dir)
                if self.docs_dir
                else site_docs(self.name, self.start, max_pages=self.max_pages)
            )
            if not pages:
                raise EnvError(
                    f"site: no documentation: {self.docs_dir or self.start} gave no pages"
                )
            self._docs = [action_reference(self.name, self.action_space()), *pages]
        return list(self._docs)

    def action_space(self) -> ActionSpace:
        space = actions.action_space(actions.SITE_SUBSETS, EXAMPLES)
        space.description += (
            "\n\nAnswer a question with send_msg_to_user('...'): it ends the episode. "
            f"The site is at {self.base}; goto() may only open pages there."
        )
        return space

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self.task = task
        page = self.session.open(viewport=VIEWPORT)
        url = self.base + task.setup.get("path", "/") if task.setup.get("path") else self.start
        if refusal := self.confine.refusal(url):
            raise EnvError(f"site: task {task.name!r} starts off the site: {refusal}")
        self.session.run(lambda: page.goto(url, wait_until="domcontentloaded"))
        self.session.goal = task.instruction
        return self.session.observe(), {"url": url}

    def step(self, action: str) -> StepResult:
        if self.task is None:
            return "Error: call reset() before step().", 0.0, False, False, {"error": True}
        self.confine.take_blocked()
        before = str(self.session.run(lambda: self.session.page.url))
        error = self.session.act(action)
        if "net::ERR_" in error:  # a refused navigation commits its error page after goto failed
            self._wait_off_site()
        if not self._on_site():  # a click or script tried to leave: its request was aborted
            self._return_to(before)
            error = self.session.last_error = f"only pages under {self.confine.base} may be opened"
        self.session.ensure_responsive()  # the judge may evaluate script in the page
        reward, done = self._judge()
        obs = self.session.observe()
        blocked = len(self.confine.take_blocked())
        return obs, reward, done, False, {"error": bool(error), "blocked_requests": blocked}

    def _wait_off_site(self, timeout_ms: int = 1000) -> None:
        page, allows = self.session.page, self.confine.allows
        with contextlib.suppress(Exception):  # it stayed on the site
            self.session.run(
                lambda: page.wait_for_url(
                    lambda u: not allows(u), wait_until="commit", timeout=timeout_ms
                )
            )

    def _return_to(self, url: str) -> None:
        """Back to where the step began (go_back, or opening `url` when that fails)."""
        page = self.session.page
        with contextlib.suppress(Exception):
            self.session.run(lambda: page.go_back())
        if not self._on_site() and self.confine.allows(url):
            with contextlib.suppress(Exception):
                self.session.run(lambda: page.goto(url, wait_until="domcontentloaded"))

    def _on_site(self) -> bool:
        url = str(self.session.run(lambda: self.session.page.url))
        return self.confine.allows(url) or url == "about:blank"

    def _judge(self) -> tuple[float, bool]:
        assert self.task is not None
        gold, said = self.task.gold, self.session.messages
        if "answer" in gold:
            return (
                (float(same_answer(said[-1], str(gold["answer"]))), True) if said else (0.0, False)
            )
        path = urlsplit(self.session.run(lambda: self.session.page.url)).path.rstrip("/") or "/"
        ok = False
        if "url_path" in gold:
            ok = path == gold["url_path"]
        elif "filter" in gold:
            f = gold["filter"]
            rows = (
                self.session.run(lambda: self.session.page.evaluate(_ROWS_JS, f["column"]))
                if path == f["path"]
                else None
            )
            ok = rows is not None and len(rows) == f["count"] and all(r == f["value"] for r in rows)
        return float(ok), ok or bool(said)  # a message to the user ends any episode

    def state_digest(self) -> str:
        return self.session.digest(extra="\n".join(self.session.messages))

    def close(self) -> None:
        self.session.close_context()
        self.task = None

    def suites(self) -> list[str]:
        return ["site-db"] if self.db else []

    def load_suite(self, name: str) -> list[Task]:
        if name != "site-db" or self.db is None:
            raise EnvError(
                f"unknown suite {name!r} for site; known: {', '.join(self.suites()) or 'none (a url has no suite)'}"
            )
        return suite_from_db(self.db, self.base)

    def sample_tasks(self) -> list[Task]:
        if self.db:
            return self.load_suite("site-db")[:4]
        return [
            Task(
                env="site",
                name="explore",
                instruction=f"Find out what the site at {self.start} offers.",
                origin="explore",
            )
        ]


def shipped_data(arg: str, config: Config) -> Shipped:
    """The demo shop `site` serves by default (built for this process)."""
    return Shipped({"shop": demo_db()}, lasting=False, note="the demo shop site serves")


@register_env(
    "site", "any local website (datasette demo shop by default); options url, docs_dir, db"
)
def _factory(arg: str, config: Config) -> SiteEnv:
    opts = dict(config.env_options.get("site", {}))
    if arg:
        opts.setdefault("url", arg)  # site:http://127.0.0.1:8001/
    unknown = set(opts) - OPTIONS
    if unknown:
        raise EnvError(
            f"unknown site option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTIONS))}"
        )
    return SiteEnv(
        url=opts.get("url"),
        docs_dir=opts.get("docs_dir"),
        db=opts.get("db"),
        **session_options(opts),
        max_pages=int(opts.get("max_pages", 25)),
    )
