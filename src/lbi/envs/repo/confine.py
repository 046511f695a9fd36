"""What one episode holds for its whole life, so it cannot starve the others or the host.

- **A uid of its own** (`UidLease`, when lbi runs as root): `RLIMIT_NPROC` counts processes per
  uid, so with one shared uid a fork bomb in one episode made every other episode's `fork` fail.
  Uids come from a fixed range; a lease is an exclusive `flock` on a file named after the uid,
  so episodes in other lbi processes on the machine never get the same one, and a crashed
  process's leases are freed by the kernel.
- **A cgroup** (`Cgroup`, where the machine lets lbi make one: cgroup v1 `memory` and `pids`
  hierarchies, or v2 with those controllers): the memory and process limits then hold for the
  episode as a whole, not per process (three processes had held 2.7 GB against `memory_mb=2048`).
  Where no cgroup can be made, the per-process `ulimit`s of the sandbox are what remains.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

UID_BASE = 200_000  # far above the uids of real users and of Debian's system range
UID_SLOTS = 1024
_CG = Path("/sys/fs/cgroup")
_counter = itertools.count()


class UidLease:
    """An exclusive sandbox uid for one episode; `release()` (or garbage collection) frees it."""

    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or Path(tempfile.gettempdir()) / "lbi-sandbox-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        start = (os.getpid() * 7 + next(_counter)) % UID_SLOTS  # spread, then probe in order
        for i in range(UID_SLOTS):
            uid = UID_BASE + (start + i) % UID_SLOTS
            fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise RuntimeError(f"all {UID_SLOTS} sandbox uids are in use")

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.release()


@dataclass
class Cgroup:
    """A memory + pids cgroup for one episode; `procs` are the files a process joins it by."""

    dirs: list[Path] = field(default_factory=list)

    @property
    def procs(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    @classmethod
    def make(cls, memory_mb: int, pids: int) -> Cgroup | None:
        """A new cgroup with these limits, or None where this machine does not allow one."""
        name = f"lbi-{os.getpid()}-{next(_counter)}"
        try:
            if (_CG / "cgroup.controllers").is_file():
                return cls._v2(name, memory_mb, pids)
            return cls._v1(name, memory_mb, pids)
        except OSError:
            return None

    @classmethod
    def _v1(cls, name: str, memory_mb: int, pids: int) -> Cgroup | None:
        mem, pid = _CG / "memory", _CG / "pids"
        if not (mem / "cgroup.procs").exists() or not (pid / "cgroup.procs").exists():
            return None
        made = cls()
        try:
            for root, limits in (
                (mem, {"memory.limit_in_bytes": memory_mb << 20}),
                (pid, {"pids.max": pids}),
            ):
                d = root / "lbi" / name
                d.mkdir(parents=True)
                made.dirs.append(d)
                for key, value in limits.items():
                    (d / key).write_text(str(value))
            with contextlib.suppress(OSError):  # no swap accounting: nothing more to cap
                (mem / "lbi" / name / "memory.memsw.limit_in_bytes").write_text(
                    str(memory_mb << 20)
                )
        except OSError:
            made.close()
            return None
        return made

    @classmethod
    def _v2(cls, name: str, memory_mb: int, pids: int) -> Cgroup | None:
        if not {"memory", "pids"} <= set((_CG / "cgroup.controllers").read_text().split()):
            return None
        parent = _CG / "lbi"
        parent.mkdir(exist_ok=True)
        (_CG / "cgroup.subtree_control").write_text("+memory +pids")
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
        d = parent / name
        d.mkdir()
        made = cls([d])
        try:
            (d / "memory.max").write_text(str(memory_mb << 20))
            (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(pids))
        except OSError:
            made.close()
            return None
        return made

    def close(self) -> None:
        """Kill whatever is still in it, then remove it."""
        for d in self.dirs:
            for _ in range(50):
                with contextlib.suppress(OSError):
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                    for p in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(p, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    d.rmdir()
                    break
                time.sleep(0.02)
        self.dirs = []


def join_argv(cgroup: Cgroup | None, argv: list[str]) -> list[str]:
    """`argv` started from a shell that first moves itself into `cgroup` (all its children,
    the sandbox included, are then in it); `argv` unchanged without one."""
    if cgroup is None or not cgroup.dirs:
        return argv
    files = [str(p) for p in cgroup.procs]
    script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
    script += 'n=$((n-1)); done; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", str(len(files)), *files, *argv]
