"""A tiny library website that writes to its SQLite database: a test site for `site` suites.

`serve(db)` starts it on 127.0.0.1 at a free port in a thread and returns (url, stop). Pages:
`/` lists the books; `/add` and `/copies` are forms that insert a book or change its copies
(POST, then a redirect back to `/`). Standard library only.
"""

from __future__ import annotations

import html
import sqlite3
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

FORMS = {
    "/add": ("Add a book", ["title", "author", "year"]),
    "/copies": ("Change copies", ["title", "copies"]),
}


def _page(title: str, body: str) -> bytes:
    nav = '<nav><a href="/">Books</a> <a href="/add">Add a book</a> <a href="/copies">Change copies</a></nav>'
    return f"<!doctype html><html><head><title>{title}</title></head><body>{nav}<h1>{title}</h1>{body}</body></html>".encode()


def _handler(db: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path in FORMS:
                title, fields = FORMS[self.path]
                inputs = "".join(
                    f'<p><label>{f} <input name="{f}" aria-label="{f}"></label></p>' for f in fields
                )
                form = f'<form method="post" action="{self.path}">{inputs}<button type="submit">Save</button></form>'
                return self._send(_page(title, form))
            if self.path != "/":
                return self._send(_page("Not found", ""), 404)
            con = sqlite3.connect(db)
            rows = con.execute(
                "SELECT title, author, year, copies FROM books ORDER BY id"
            ).fetchall()
            con.close()
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                for r in rows
            )
            table = f"<table><tr><th>title</th><th>author</th><th>year</th><th>copies</th></tr>{cells}</table>"
            self._send(_page("Books", table))

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(size).decode()).items()}
            con = sqlite3.connect(db)
            try:
                if self.path == "/add":
                    con.execute(
                        "INSERT INTO books (title, author, year, copies) VALUES (?, ?, ?, 1)",
                        (form.get("title", ""), form.get("author", ""), int(form.get("year") or 0)),
                    )
                elif self.path == "/copies":
                    con.execute(
                        "UPDATE books SET copies = ? WHERE title = ?",
                        (int(form.get("copies") or 0), form.get("title", "")),
                    )
                con.commit()
            except ValueError:
                return self._send(_page("Error", "<p>year and copies must be numbers</p>"), 400)
            finally:
                con.close()
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def serve(db: Path) -> tuple[str, Callable[[], None]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(db))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{server.server_address[1]}/", stop
