"""`desktop`: LibreOffice Calc/Writer and Mousepad under Xvfb, observed through AT-SPI.

Each episode starts its own display, buses and application on a fresh copy of the task's
start document (see session.py); a task is scored on the files in the episode's folder when
the agent says done(), like OSWorld's checkers that open the saved file.

Options (`env_options.desktop.*`): max_chars (observation budget, 6000), max_nodes (400),
rows/cols (spreadsheet area listed, 20 x 8), settle_s (pause after an action, 0.1),
screenshot (a PNG of the screen with every observation, in info["screenshot_png_b64"], as the
web envs do; off by default: the `screenshot()` action takes one on request), sandbox (the
application in bubblewrap without network, true; false runs it unconfined, for a machine
without namespaces).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.desktop import actions, apps, odf, starts, tasks
from lbi.envs.desktop.procs import owner_token, start_guard, stop_guard
from lbi.envs.desktop.session import Session
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

# How long a reset waits for the application's window to show the task's file. A warm start
# takes seconds; the first one on a freshly installed machine, beside two other episodes
# starting, took over 60 s (a clean-machine `make test`; 68 s for the whole test once warm).
READY_S = 120.0
NAME_WAIT_S = 5.0  # how long an action on an element named (not numbered) waits for it to appear


class DesktopEnv:
    name = "desktop"
    max_concurrency = 2  # each episode is a whole office suite; 2 cores serve two at most

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.opts = {
            "max_chars": 6000,
            "max_nodes": 400,
            "rows": 20,
            "cols": 8,
            "settle_s": 0.1,
            "screenshot": False,
            "sandbox": True,
        }
        self.opts.update(options or {})
        self.token = owner_token()
        self.episode = 0
        self.session: Session | None = None
        self.workdir: Path | None = None
        self.task: Task | None = None
        self.file: Path | None = None
        self._guard = start_guard(self.token + ":")

    # -- contract -------------------------------------------------------------------------
    def docs(self) -> list[Doc]:
        from lbi.envs.desktop.docs import desktop_docs

        return desktop_docs(self.action_space())

    def action_space(self) -> ActionSpace:
        return actions.action_space()

    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self._end_episode()
        start = task.setup.get("start") or tasks.start_of(task.name)
        if start not in starts.STARTS:
            raise EnvError(f"desktop task {task.name!r} names no known start document")
        self.episode += 1
        self.task = task
        self.workdir = Path(tempfile.mkdtemp(prefix="lbi-desktop-"))
        self.file = starts.materialize(start, self.workdir)
        argv, extra = apps.launch(starts.STARTS[start].app, self.file, self.workdir)
        mark = f"{self.token}:{self.episode}"
        self.session = Session(self.workdir, mark, sandbox=bool(self.opts["sandbox"]))
        self.session.start(argv, extra)
        obs = self._wait_ready()
        info = {"task_id": task.id, "app": starts.STARTS[start].app}
        return obs, info | self._shot(bool(self.opts["screenshot"]))

    def step(self, action: str) -> StepResult:
        parsed = actions.parse(action)
        if isinstance(parsed, str):
            return f"Error: {parsed}\n\n{self._observe()}", 0.0, False, False, {"error": True}
        if parsed.verb == "done":
            reward = self._score()
            return "Episode finished.", reward, True, False, {"submitted": True}
        try:
            note = self._act(parsed)
        except EnvError as e:
            return f"Error: {e}", 0.0, False, True, {"error": True}
        time.sleep(float(self.opts["settle_s"]))
        error = note.startswith("Error")
        info = {"error": error} | self._shot(parsed.verb == "screenshot" or self.opts["screenshot"])
        return f"{note}\n\n{self._observe()}", 0.0, False, False, info

    def screenshot(self) -> bytes:
        """The running episode's screen as PNG bytes."""
        return self._need().screenshot()

    def _shot(self, wanted: object) -> dict[str, str]:
        if not wanted:
            return {}
        return {"screenshot_png_b64": base64.b64encode(self.screenshot()).decode("ascii")}

    def state_digest(self) -> str:
        if self.file is None or not self.file.exists():
            return ""
        return hashlib.sha256(_content_bytes(self.file)).hexdigest()[:16]

    def close(self) -> None:
        self._end_episode()
        if self._guard is not None:
            stop_guard(self._guard)
            self._guard = None  # type: ignore[assignment]

    def suites(self) -> list[str]:
        return [tasks.SUITE]

    def load_suite(self, name: str) -> list[Task]:
        return tasks.load_suite(name)

    def sample_tasks(self) -> list[Task]:
        return tasks.sample()

    # -- internals ------------------------------------------------------------------------
    def _end_episode(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _need(self) -> Session:
        if self.session is None:
            raise EnvError("no episode: call reset first")
        return self.session

    def _wait_ready(self) -> str:
        """Poll until the app's window shows the task's file with a document in it."""
        assert self.file is not None
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            got = self._need().ask({"op": "tree", "max_nodes": 60, "rows": 1, "cols": 1})
            if self.file.name in got.get("window", "") and got.get("nodes", 0) > 5:
                return self._settled(deadline)
            time.sleep(0.2)
        raise EnvError(f"the application did not show {self.file.name} within {READY_S:.0f} s")

    def _settled(self, deadline: float) -> str:
        """Toolbars fill in and focus lands just after the document appears: wait until two
        observations in a row agree, so that a reset is reproducible."""
        last = ""
        while time.monotonic() < deadline:
            time.sleep(0.4)
            obs = self._observe()
            if obs == last:
                return obs
            last = obs
        return last

    def _observe(self) -> str:
        if self.session is None:
            return "No episode is running."
        got = self.session.ask(
            {k: self.opts[k] for k in ("max_nodes", "rows", "cols")} | {"op": "tree"}
        )
        text, window = str(got.get("text", "")), str(got.get("window", ""))
        if self.workdir is not None:  # the episode's temp folder would make observations differ
            for prefix in (f"file://{self.workdir}/", f"{self.workdir}/"):
                text, window = text.replace(prefix, ""), window.replace(prefix, "")
        limit = int(self.opts["max_chars"])
        if len(text) > limit:
            text = text[:limit].rsplit("\n", 1)[0] + "\n... (cut to the observation budget)"
        return f"Window: {window}\n{text}"

    def _act(self, a: actions.Action) -> str:
        s = self._need()
        if a.verb == "type":
            _type(s, str(a.args[0]))
            return "Typed."
        if a.verb == "key":
            ok = s.xdotool("key", "--delay", "30", "--clearmodifiers", *str(a.args[0]).split())
            return "Pressed." if ok else f"Error: unknown key in {a.args[0]!r}"
        if a.verb == "click_xy":
            x, y = int(a.args[0]), int(a.args[1])  # type: ignore[call-overload]
            s.xdotool("mousemove", str(x), str(y), "click", "1")
            return f"Clicked at {x},{y}."
        if a.verb == "save":
            return self._save()
        if a.verb == "wait":
            time.sleep(1.0)
            return "Waited."
        if a.verb == "screenshot":
            return (
                "Screenshot taken: a PNG of the screen is in the step's info (screenshot_png_b64)."
            )
        kind = "set_text" if a.verb == "set_text" else a.verb
        req = {"op": "act", "kind": kind, "id": a.args[0]}
        if a.verb == "set_text":
            req["text"] = a.args[1]
        got = s.ask(req)
        deadline = time.monotonic() + NAME_WAIT_S
        while _missing(got, a.args[0]) and time.monotonic() < deadline:
            time.sleep(0.3)  # a named element of a dialog that is still opening: look again
            self._observe()
            got = s.ask(req)
        if got.get("ok"):
            return f"Done: {got.get('detail', '')}."
        xy = got.get("xy")
        if xy and a.verb in ("click", "select", "set_text", "focus"):
            s.xdotool("mousemove", str(xy[0]), str(xy[1]), "click", "1")
            if a.verb == "set_text":
                s.xdotool("key", "--clearmodifiers", "ctrl+a")
                _type(s, str(a.args[1]))
            return "Done: clicked."
        return f"Error: {got.get('detail') or got.get('error', 'the action failed')}"

    def _save(self) -> str:
        assert self.file is not None
        before = self.file.stat().st_mtime_ns if self.file.exists() else 0
        self._need().xdotool("key", "--clearmodifiers", "ctrl+s")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.file.exists() and self.file.stat().st_mtime_ns != before:
                time.sleep(0.2)  # let the writer finish the file it just replaced
                return "Saved."
            time.sleep(0.05)
        return "Error: the document was not saved (is a dialog open?)"

    def _score(self) -> float:
        if self.task is None or self.workdir is None:
            return 0.0
        return 1.0 if tasks.check(self.task, self.workdir) else 0.0


def _content_bytes(path: Path) -> bytes:
    """What a document says, read back: ODF files differ in metadata and attribute order."""
    if path.suffix == ".ods":
        return repr(odf.read_sheets(path)).encode()
    if path.suffix == ".odt":
        return repr(odf.read_text(path)).encode()
    return path.read_bytes()


def _missing(got: dict[str, Any], ref: object) -> bool:
    return isinstance(ref, str) and not ref.isdigit() and "no element" in str(got.get("detail"))


def _type(s: Session, text: str) -> None:
    """xdotool types "\n" as a bare line feed that LibreOffice ignores: press the keys instead."""
    for part in re.split(r"([\n\t])", text):
        if part in ("\n", "\t"):
            s.xdotool("key", "--clearmodifiers", "Return" if part == "\n" else "Tab")
        elif part:
            s.xdotool("type", "--delay", "8", "--", part)


@register_env("desktop", "LibreOffice Calc/Writer and Mousepad under Xvfb, seen through AT-SPI")
def _factory(arg: str, config: Config) -> DesktopEnv:
    options = dict(config.env_options.get("desktop", {})) if hasattr(config, "env_options") else {}
    return DesktopEnv(options)
