"""One episode's desktop: a private X display, window manager, session bus, app and reader.

Order matters: Xvfb first (it picks a free display itself with -displayfd, so parallel episodes
never collide), then a session bus of our own (the AT-SPI bus is activated on it, so every
episode has its own accessibility bus and sees only its own applications), then the window
manager (it gives new windows such as dialogs the keyboard focus), then the application, then
the AT-SPI reader. All of them run in one process group and carry the episode's marker.
The display admits only holders of the episode's cookie, and the application runs in a
sandbox without network (see confine.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lbi.envs.base import EnvError
from lbi.envs.desktop import confine
from lbi.envs.desktop.procs import MARK, kill_group, sweep

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3 has pyatspi; ours does not
READER = Path(__file__).with_name("atspi_reader.py")
SCREEN = (1280, 800)
# Pillow's screen grab connects from this process and finds the cookie through the process's
# XAUTHORITY: episodes in threads of one process take turns setting it.
_GRAB = threading.Lock()


def _need(exe: str, package: str) -> str:
    path = shutil.which(exe)
    if path is None:
        raise EnvError(f"{exe} not found; run scripts/system-deps.sh (apt-get install {package})")
    return path


class Session:
    """Start with `start(argv)`; `close()` leaves no process and no display behind."""

    def __init__(self, workdir: Path, mark: str, sandbox: bool = True) -> None:
        self.workdir = workdir
        self.mark = mark
        self.sandbox = sandbox  # the application in bubblewrap, without network
        self.display = -1
        self.procs: list[subprocess.Popen[bytes]] = []
        self.reader: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}

    # -- start ----------------------------------------------------------------------------
    def start(self, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        try:
            self._start_x()
            self._start_bus()
            if shutil.which("openbox"):
                self.procs.append(self._spawn(["openbox", "--sm-disable"]))
            if self.sandbox:
                argv = confine.sandboxed(argv, self.workdir, self.display)
            self.procs.append(self._spawn(argv, extra_env))
            self._start_reader()
        except Exception:
            self.close()
            raise

    def _base_env(self) -> dict[str, str]:
        home = self.workdir / "home"
        run = self.workdir / "run"
        for d in (home, run):
            d.mkdir(mode=0o700, exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        return {
            **keep,
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(run),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            MARK: self.mark,
        }

    def _spawn(self, argv: list[str], extra: dict[str, str] | None = None) -> Any:
        pgid = self.procs[0].pid if self.procs else 0
        proc = subprocess.Popen(
            argv,
            env={**self.env, **(extra or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
            process_group=pgid,  # one group per episode: the first process leads it
        )
        return proc

    def _start_x(self) -> None:
        xvfb = _need("Xvfb", "xvfb")
        self.env = self._base_env()
        # Xvfb reads every cookie in its -auth file whatever display the entry names: the
        # display number is only known once it runs, so clients get a file of their own.
        cookie = confine.new_cookie()
        server_auth, client_auth = self.workdir / "xauth-server", self.workdir / "Xauthority"
        confine.write_xauth(server_auth, 0, cookie)
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                [
                    xvfb,
                    "-displayfd",
                    str(w),
                    "-nolisten",
                    "tcp",
                    "-auth",
                    str(server_auth),
                    # shared memory would need the sandboxed app in the server's IPC namespace
                    "-extension",
                    "MIT-SHM",
                    "-screen",
                    "0",
                    f"{SCREEN[0]}x{SCREEN[1]}x24",
                ],
                env=self.env,
                pass_fds=(w,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                process_group=0,
            )
            self.procs.append(proc)
            os.close(w)
            w = -1
            got = b""
            deadline = time.monotonic() + 20
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                chunk = os.read(r, 16)
                if not chunk:
                    break
                got += chunk
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if not got.strip().isdigit():
            raise EnvError("Xvfb did not report a display")
        self.display = int(got)
        confine.write_xauth(client_auth, self.display, cookie)
        self.env["DISPLAY"] = f":{self.display}"
        self.env["XAUTHORITY"] = str(client_auth)

    def _start_bus(self) -> None:
        dbus = _need("dbus-daemon", "dbus")
        sock = self.workdir / "bus"
        conf = confine.bus_config(self.workdir, sock)
        self.procs.append(self._spawn([dbus, f"--config-file={conf}", "--nofork"]))
        _wait(lambda: sock.exists(), 10, "the session bus did not start")
        self.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={sock}"

    def _start_reader(self) -> None:
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            raise EnvError(f"{SYSTEM_PYTHON} not found (apt-get install python3-pyatspi)")
        self.reader = subprocess.Popen(
            [SYSTEM_PYTHON, str(READER)],
            env={**self.env, "NO_AT_BRIDGE": "1"},  # the reader itself is not an application
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            process_group=self.procs[0].pid,
        )

    # -- use ------------------------------------------------------------------------------
    def ask(self, req: dict[str, Any]) -> dict[str, Any]:
        """One request to the AT-SPI reader; an EnvError if it is gone."""
        r = self.reader
        if r is None or r.stdin is None or r.stdout is None or r.poll() is not None:
            raise EnvError("the accessibility reader is not running")
        r.stdin.write(json.dumps(req) + "\n")
        r.stdin.flush()
        line = r.stdout.readline()
        if not line:
            raise EnvError("the accessibility reader stopped")
        out: dict[str, Any] = json.loads(line)
        return out

    def xdotool(self, *args: str) -> bool:
        exe = _need("xdotool", "xdotool")
        done = subprocess.run(
            [exe, *args], env=self.env, capture_output=True, timeout=20, check=False
        )
        # xdotool skips an unknown key name with a warning and still exits 0
        return done.returncode == 0 and b"No such key name" not in done.stderr

    def screenshot(self) -> bytes:
        """The whole virtual screen as PNG bytes (Pillow reads the X display over XCB)."""
        import io

        from PIL import ImageGrab

        if "DISPLAY" not in self.env:
            raise EnvError("no display is running")
        try:
            with _GRAB, _environ("XAUTHORITY", self.env["XAUTHORITY"]):
                image = ImageGrab.grab(xdisplay=self.env["DISPLAY"])
        except OSError as e:
            raise EnvError(f"cannot read the screen: {e}") from None
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs[:2])

    # -- stop -----------------------------------------------------------------------------
    def close(self) -> None:
        if self.reader is not None:
            for f in (self.reader.stdin, self.reader.stdout):
                with contextlib.suppress(OSError):
                    if f is not None:
                        f.close()
        group = [*self.procs, *([self.reader] if self.reader is not None else [])]
        kill_group(group)  # one group: its leader (Xvfb) names it
        self.reader = None
        self.procs = []
        sweep(self.mark, grace_s=0.2)  # what left the group (bus-activated services)
        if self.display >= 0:  # a killed X server leaves its lock and socket behind
            for stale in (f"/tmp/.X{self.display}-lock", f"/tmp/.X11-unix/X{self.display}"):
                with contextlib.suppress(OSError):
                    os.unlink(stale)
            self.display = -1


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _wait(cond: Any, timeout_s: float, why: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise EnvError(why)
        time.sleep(0.05)
