"""`lbi view`: a read-only web app over a run's store (run overview, data, verdicts, evaluation).

Server-rendered HTML (Starlette + Jinja2, autoescaped, no JavaScript), served on 127.0.0.1 by
default. The run's SQLite file is opened with `mode=ro`; filters and full-text search read a
derived index built once at start in a temporary folder (see `lbi.view.index`).
"""

DEFAULT_PORT = 8765
