"""What keeps an episode's desktop to itself: an X cookie, a narrow session bus, a sandbox.

The agent's actions and the documents it opens are hostile: a macro, a `=WEBSERVICE()` formula
or a crafted file runs inside the application. So
- the X server admits only holders of a random per-episode cookie (MIT-MAGIC-COOKIE-1, kept
  in the episode's 0700 folder): another user, and another episode, cannot drive the display;
- the session bus activates only the accessibility bus, and no client may change the
  environment of what it activates (services started by the bus run outside the sandbox);
- the application runs in bubblewrap: no network (its own loopback only), its own process,
  IPC and mount namespaces, no capabilities, the system read-only and only the episode's
  folder and its own display socket writable or reachable.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from lbi.envs.base import EnvError

A11Y_SERVICE = Path("/usr/share/dbus-1/services/org.a11y.Bus.service")
# /etc entries the applications read (GTK, fontconfig, LibreOffice's own registry); the rest of
# /etc (shadow, keys, service configuration) stays out of reach.
_ETC = [
    "alternatives",
    "dconf",
    "dictionaries-common",
    "fonts",
    "group",
    "gtk-3.0",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "libpaper.d",
    "libreoffice",
    "locale.alias",
    "localtime",
    "machine-id",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "papersize",
    "passwd",
    "X11",
    "xdg",
]


# -- X authorization ----------------------------------------------------------------------------
def new_cookie() -> str:
    return secrets.token_hex(16)


def write_xauth(path: Path, display: int, cookie: str) -> None:
    """Add `cookie` for `:display` to the authority file `path` (made 0600). The cookie goes
    through xauth's stdin: a command line is readable by every user in /proc."""
    exe = shutil.which("xauth")
    if exe is None:
        raise EnvError("xauth not found; run scripts/system-deps.sh (apt-get install xauth)")
    if not path.exists():
        path.touch(mode=0o600)
    done = subprocess.run(
        [exe, "-q", "-f", str(path), "source", "-"],
        input=f"add :{display} MIT-MAGIC-COOKIE-1 {cookie}\n".encode(),
        capture_output=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        raise EnvError(f"xauth failed: {done.stderr.decode(errors='replace').strip()}")
    path.chmod(0o600)


# -- session bus ----------------------------------------------------------------------------
_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
</busconfig>
"""


def bus_config(workdir: Path, socket: Path) -> Path:
    """A session bus that can start the accessibility bus and nothing else (the system's
    session services, such as a proxy resolver, would run outside the sandbox, with network)."""
    services = workdir / "bus-services"
    services.mkdir(mode=0o700, exist_ok=True)
    if A11Y_SERVICE.exists():
        shutil.copy(A11Y_SERVICE, services / A11Y_SERVICE.name)
    conf = workdir / "bus.conf"
    conf.write_text(_BUS.format(socket=socket, services=services))
    return conf


# -- the application's sandbox --------------------------------------------------------------
def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise EnvError(
            "bubblewrap not found; run scripts/system-deps.sh (apt-get install bubblewrap), "
            "or set env_options.desktop.sandbox=false to run the applications unconfined"
        )
    return path


def sandbox_argv(workdir: Path, display: int | None) -> list[str]:
    """bwrap's options; the application's command line follows them."""
    a = [bwrap(), "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    a += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        a.append("--unshare-user")
    a += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib32", "lib64", "sbin"):
        if Path(f"/{link}").is_symlink():
            a += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    for name in _ETC:
        if Path("/etc", name).exists():
            a += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    if Path("/var/cache/fontconfig").is_dir():
        a += ["--ro-bind", "/var/cache/fontconfig", "/var/cache/fontconfig"]
    a += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if display is not None:
        x_socket = f"/tmp/.X11-unix/X{display}"  # this episode's display, no other
        a += ["--bind", x_socket, x_socket]
    return [*a, "--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--"]


@functools.cache
def _probe() -> str:
    """Empty if bwrap can build the sandbox on this machine, else why not (checked once)."""
    try:
        with tempfile.TemporaryDirectory(prefix="lbi-desktop-probe-") as d:
            done = subprocess.run(
                [*sandbox_argv(Path(d), None), "true"],
                capture_output=True,
                timeout=20,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return "" if done.returncode == 0 else done.stderr.decode(errors="replace").strip()


def sandboxed(argv: list[str], workdir: Path, display: int) -> list[str]:
    why = _probe()
    if why:
        raise EnvError(
            f"cannot start the desktop sandbox (bubblewrap): {why}; set "
            "env_options.desktop.sandbox=false to run the applications unconfined"
        )
    return [*sandbox_argv(workdir, display), *argv]
