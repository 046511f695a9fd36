"""The viewer's web app: GET-only Starlette routes rendering autoescaped Jinja2 pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lbi.view import DEFAULT_PORT
from lbi.view.guard import Guard, is_loopback
from lbi.view.queries import Filters, RunView

TEMPLATES = Path(__file__).parent / "templates"
# Nothing on these pages runs a script or fetches from elsewhere, so the browser is told so:
# even text that slipped past escaping could not execute.
# `lbi report` links here (lbi.eval.report.VIEWER_URL, without importing matplotlib for it).
VIEWER_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'"
# The report may come from someone else's run (a copied run folder): it is shown as written, in a
# sandbox (an origin of its own, no script, no form), so it can neither run nor act as the viewer.
REPORT_CSP = f"{CSP}; sandbox"


class Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _page(request: Request) -> int:
    return max(1, _int(request.query_params.get("page"), 1) or 1)


def create_app(view: RunView, host: str = "127.0.0.1", token: str | None = None) -> Starlette:
    """The app for a viewer bound to `host`: it answers only requests naming that host (or
    loopback), and needs `token` when there is one, which any non-loopback `host` must have."""
    if token is None and not is_loopback(host):
        raise ValueError(f"a viewer on {host} (not loopback) needs a token")
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(run=view.name, **ctx)
        return HTMLResponse(html, status_code=status)

    def missing(what: str) -> HTMLResponse:
        return render("missing.html.j2", status=404, what=what)

    def overview(request: Request) -> Response:
        return render("overview.html.j2", **view.overview())

    def docs(request: Request) -> Response:
        page = _page(request)
        return render("docs.html.j2", docs=view.docs(page), page=page)

    def doc(request: Request) -> Response:
        found = view.doc(request.path_params["id"])
        return render("doc.html.j2", **found) if found else missing("document")

    def tasks(request: Request) -> Response:
        page, origin = _page(request), request.query_params.get("origin", "")
        return render("tasks.html.j2", tasks=view.tasks(origin, page), page=page, origin=origin)

    def task(request: Request) -> Response:
        found = view.task(request.path_params["id"])
        return render("task.html.j2", **found) if found else missing("task")

    def trajectory(request: Request) -> Response:
        found = view.trajectory(request.path_params["id"])
        return render("trajectory.html.j2", **found) if found else missing("trajectory")

    def window(request: Request) -> Response:
        p = request.path_params
        found = view.window(p["id"], p["i"], p["j"])
        return render("window.html.j2", **found) if found else missing("trajectory")

    def example(request: Request) -> Response:
        ex = view.example(request.path_params["id"])
        if ex is None:
            return missing("example")
        return RedirectResponse(f"/trajectory/{ex.trajectory_id}/window/{ex.i}-{ex.j}#ex-{ex.id}")

    def examples(request: Request) -> Response:
        q = request.query_params
        f = Filters(
            kept=q.get("kept", ""),
            criterion=q.get("criterion", ""),
            env=q.get("env", ""),
            min_steps=_int(q.get("min_steps")),
            max_steps=_int(q.get("max_steps")),
            q=q.get("q", ""),
        )
        page = _page(request)
        args = {k: v for k, v in q.items() if k != "page" and v}
        ctx: dict[str, Any] = {**view.examples(f, page), **view.facets()}
        return render("examples.html.j2", f=f, page=page, args=args, **ctx)

    def eval_grid(request: Request) -> Response:
        return render("eval.html.j2", **view.eval_grid())

    def episodes(request: Request) -> Response:
        chosen = request.query_params.getlist("v") or ["none", "both"]
        seed = _int(request.query_params.get("seed"), 0) or 0
        task_id = request.path_params["id"]
        data = view.episodes(task_id, chosen[:4], seed)
        return render("episodes.html.j2", task_id=task_id, seed=seed, chosen=chosen, **data)

    def report(request: Request) -> Response:
        path = view.report_path()
        if path is None:
            return missing("report (run `lbi report` first)")
        # The report links to the viewer's default address; served here, it links to this one.
        html = path.read_text(encoding="utf-8").replace(VIEWER_URL, "")
        return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})

    get = ["GET"]
    routes = [
        Route("/", overview, methods=get),
        Route("/docs", docs, methods=get),
        Route("/doc/{id:str}", doc, methods=get),
        Route("/tasks", tasks, methods=get),
        Route("/task/{id:str}", task, methods=get),
        Route("/trajectory/{id:str}", trajectory, methods=get),
        Route("/trajectory/{id:str}/window/{i:int}-{j:int}", window, methods=get),
        Route("/example/{id:str}", example, methods=get),
        Route("/examples", examples, methods=get),
        Route("/eval", eval_grid, methods=get),
        Route("/eval/task/{id:str}", episodes, methods=get),
        Route("/report", report, methods=get),
    ]
    guard = Middleware(Guard, host=host, token=token)
    return Starlette(routes=routes, middleware=[Middleware(Headers), guard])
