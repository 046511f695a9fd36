"""Run one shell command in a bubblewrap sandbox: no network, read-only system, one writable folder.

Each command gets its own bubblewrap: new network, PID, IPC and UTS namespaces (the only network
device is a loopback that reaches nothing of the host), a fresh tmpfs for `/`, `/usr` and the
Python installation bound read-only, the workspace bound read-write at `mount_at`, a private
`/tmp`, and a cleared environment. Nothing of the host's home, run folder or variables is there.

Limits: a wall-clock timeout that kills the whole tree (bubblewrap is the only child we start; it
runs the command as PID 1's child in its own PID namespace with `--die-with-parent`, so killing it
ends everything the command started), rlimits set inside the sandbox with bash's `ulimit` (address
space, process count, file size, open files), and output read in chunks: the head and tail are
kept up to a budget, the rest only counted, and a command that writes more than
`max_output_bytes` is killed, so memory stays flat whatever the command prints.

As root, RLIMIT_NPROC does not apply to uid 0, so the command drops to an unprivileged uid with
`setpriv` (no capabilities, no new privileges); the workspace is then owned by that uid. As any
other user, bubblewrap makes a user namespace and the command keeps the caller's uid.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lbi.envs.repo.confine import Cgroup, join_argv

SANDBOX_UID = 65534  # `nobody`: the uid commands run as when lbi runs as root


class SandboxError(RuntimeError):
    """bubblewrap is missing or cannot start."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0
    memory_mb: int = 2048  # address space of each process
    nproc: int = 128  # processes of the sandbox's uid
    fsize_mb: int = 256  # largest file a command may write
    nofile: int = 256
    tmp_mb: int = 512  # the private /tmp (a tmpfs: memory)
    output_chars: int = 8000  # kept per stream (head and tail), the rest counted and cut
    max_output_bytes: int = 32 << 20  # past this the command is killed


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    timed_out: bool = False
    output_killed: bool = False
    seconds: float = 0.0

    def render(self) -> str:
        """The observation: exit code, then each non-empty stream, saying what was cut."""
        head = f"exit code: {self.exit_code}"
        if self.timed_out:
            head += " (killed: the command ran past its time limit)"
        if self.output_killed:
            head += " (killed: the command printed more than the output limit)"
        parts = [head]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text:
                parts.append(f"{name}:\n{text.rstrip()}")
        return "\n".join(parts)


@dataclass
class _Capture:
    """Head and tail of one stream, with a count of every byte that went by."""

    keep: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.keep // 2:
                del self.tail[: len(self.tail) - self.keep // 2]

    def text(self) -> str:
        kept = len(self.head) + len(self.tail)
        head = self.head.decode("utf-8", "replace")
        if self.total <= kept:
            return head + self.tail.decode("utf-8", "replace")
        cut = self.total - kept
        note = f"\n[... {cut} bytes cut of {self.total}; showing the first and last parts ...]\n"
        return head + note + self.tail.decode("utf-8", "replace")


def bwrap_path() -> str:
    for d in ("/usr/bin", "/bin", "/usr/local/bin"):
        if os.access(f"{d}/bwrap", os.X_OK):
            return f"{d}/bwrap"
    raise SandboxError("bubblewrap is not installed: apt-get install -y bubblewrap")


def python_roots() -> list[Path]:
    """The folders the running Python needs (its installation and its virtualenv)."""
    roots = []
    for p in (Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()):
        if not str(p).startswith("/usr") and p not in roots:
            roots.append(p)
    return roots


_ETC = ["alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types"]


@dataclass
class Sandbox:
    """Runs commands with `workspace` at `mount_at`; `ro_paths` are also visible, read-only."""

    workspace: Path
    mount_at: str = "/repo"
    limits: Limits = field(default_factory=Limits)
    ro_paths: list[Path] = field(default_factory=list)
    binds: dict[str, Path] = field(default_factory=dict)  # extra writable: inside -> host
    ro_binds: dict[str, Path] = field(default_factory=dict)  # extra read-only: inside -> host
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False  # only the setup command may have it
    uid: int = SANDBOX_UID  # as root: the uid commands run as (an episode's own: confine.py)
    cgroup: Cgroup | None = None  # the episode's memory and process limits, where there is one

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def argv(self, command: str, limits: Limits | None = None) -> list[str]:
        lim = limits or self.limits
        a = [bwrap_path(), "--die-with-parent", "--new-session"]
        a += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.network:
            a.append("--unshare-net")
        if self.as_root:
            a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        else:
            a.append("--unshare-user")
        a += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin", "lib32"):
            if Path(f"/{link}").is_symlink():
                a += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        a += ["--perms", "0755", "--dir", "/etc"]
        for name in _ETC:
            if Path("/etc", name).exists():
                a += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        if self.network and Path("/etc/resolv.conf").exists():
            a += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
        # /tmp first (sized, so one episode cannot fill the host's memory), then the binds: a
        # Python or venv that lives under /tmp is mounted on top of it, not hidden below it.
        a += ["--proc", "/proc", "--dev", "/dev"]
        a += ["--perms", "1777", "--size", str(lim.tmp_mb << 20), "--tmpfs", "/tmp"]
        for p in [*python_roots(), *self.ro_paths]:
            for parent in reversed(p.parents[:-1]):
                a += ["--perms", "0755", "--dir", str(parent)]
            a += ["--ro-bind", str(p), str(p)]
        for inside, host in self.binds.items():
            a += ["--bind", str(host), inside]
        for inside, host in self.ro_binds.items():
            a += ["--ro-bind", str(host), inside]
        a += ["--bind", str(self.workspace), self.mount_at, "--chdir", self.mount_at]
        a.append("--clearenv")
        for k, v in self._env().items():
            a += ["--setenv", k, v]
        if self.as_root:
            a += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            a += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        # The limits are set by the shell that then runs the command (bash's `ulimit` sets soft
        # and hard limits; nothing in the sandbox may raise a hard limit), one exec fewer than
        # `prlimit`. Units: KiB for -v, 1 KiB blocks for -f.
        ulimits = (
            f"ulimit -v {lim.memory_mb << 10} -u {lim.nproc} -f {lim.fsize_mb << 10} "
            f"-n {lim.nofile} || exit 125\n"
        )
        a += ["bash", "-c", ulimits + command]
        return a

    def _env(self) -> dict[str, str]:
        extra = {**self.binds, **self.ro_binds}
        bins = [f"{i}/bin" for i, h in extra.items() if (h / "bin").is_dir()]
        bins += [str(r / "bin") for r in reversed(python_roots())]
        env = {
            "PATH": ":".join([*bins, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        env.update(self.env)
        return env

    def run(self, command: str, limits: Limits | None = None) -> RunResult:
        lim = limits or self.limits
        return run_argv(join_argv(self.cgroup, self.argv(command, lim)), lim)


def run_argv(argv: list[str], lim: Limits, cwd: str | None = None) -> RunResult:
    """Start `argv` in its own process group, collect capped output, kill the group at the limit."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=cwd,
        )
    except OSError as e:
        raise SandboxError(f"cannot start the sandbox: {e}") from None
    assert proc.stdout is not None and proc.stderr is not None
    fo, fe = proc.stdout.fileno(), proc.stderr.fileno()
    caps = {fo: _Capture(lim.output_chars), fe: _Capture(lim.output_chars)}
    timed_out = killed = False
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        sel.register(f, selectors.EVENT_READ)
    try:
        while sel.get_map():
            left = start + lim.timeout_s - time.monotonic()
            if left <= 0:
                timed_out = True
                _kill(proc)
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                caps[key.fd].add(chunk)
            if sum(c.total for c in caps.values()) > lim.max_output_bytes:
                killed = True
                _kill(proc)
                break
    finally:
        sel.close()
        if proc.poll() is None and (timed_out or killed):
            _kill(proc)
        code = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    out, err = caps[fo], caps[fe]
    return RunResult(
        exit_code=code if code >= 0 else 128 - code,
        stdout=out.text(),
        stderr=err.text(),
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        timed_out=timed_out,
        output_killed=killed,
        seconds=time.monotonic() - start,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the group; bubblewrap's `--die-with-parent` then ends the sandbox's PID namespace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
