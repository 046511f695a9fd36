"""A real two-node Ray cluster on loopback, for tests and bench/scale_out.py.

Ray outside a network namespace advertises the machine's own address and probes an outside one
to find it; here the cluster lives in a network namespace that holds only loopback (`unshare
--net`), where both nodes are 127.0.0.1. Commands that talk to it (a driver: `lbi ...`) enter the
namespace with `nsenter`. Every process in the namespace is ours; `stop` ends them by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 26379  # outside Ray's worker-port range (10002-19999)
NODE2_PORT = 26400  # the second node's node-manager port: how its raylet is told apart
SRC = str(Path(__file__).resolve().parents[2])  # the `src` folder holding this lbi


def available() -> str:
    """Empty when a loopback cluster can be started here, else why not."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (the `ray` extra)"
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter missing"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return "" if probe.returncode == 0 else "cannot create a network namespace here"


class LoopbackCluster:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="lbi-ray-", dir="/tmp")  # short: socket paths
        bindir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p),
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.ray = str(Path(bindir) / "ray")
        self.holder: subprocess.Popen[bytes] | None = None
        self.ns = ""
        self.address = f"127.0.0.1:{PORT}"

    def start(self) -> LoopbackCluster:
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--fork",
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep 3600",
            ],
            stdout=subprocess.PIPE,
        )
        assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == b"up"
        self.ns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        common = ["--num-cpus=1", "--disable-usage-stats", f"--temp-dir={self.tmp}"]
        head = [self.ray, "start", "--head", f"--port={PORT}", "--include-dashboard=false"]
        self.check([*head, *common])
        self.check(
            [
                self.ray,
                "start",
                f"--address={self.address}",
                f"--node-manager-port={NODE2_PORT}",
                *common,
            ]
        )
        return self

    def wrap(self, argv: list[str]) -> list[str]:
        assert self.holder is not None
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *argv]

    def run(self, argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.wrap(argv), env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def check(self, argv: list[str]) -> str:
        r = self.run(argv)
        assert r.returncode == 0, f"{argv}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    def popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.wrap(argv), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def pids(self) -> list[int]:
        """Every process in the cluster's namespace but the namespace holder."""
        assert self.holder is not None
        ns, out = self.ns, []
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{p}/ns/net") == ns:
                        out.append(int(p))
                except OSError:
                    pass
        return out

    @staticmethod
    def cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return ""

    @staticmethod
    def ppid(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return -1

    def actors(self, name: str = "EnvActor", node2: bool = False) -> list[int]:
        """PIDs of the worker processes holding a `name` actor (on the second node only)."""
        pids = self.pids()
        raylets = [
            p
            for p in pids
            if "raylet" in self.cmdline(p) and (not node2 or f"={NODE2_PORT}" in self.cmdline(p))
        ]
        return [p for p in pids if self.ppid(p) in raylets and f"ray::{name}" in self.cmdline(p)]

    def actors_started(self, name: str = "EnvActor") -> int:
        """How many `name` actors the cluster has started so far (from its worker logs, which
        both nodes write under the shared temp dir): proof that a run used the cluster."""
        logs = Path(self.tmp, "session_latest", "logs")
        mark = f":actor_name:{name}\n"
        return sum(f.read_text(errors="replace").count(mark) for f in logs.glob("worker-*.out"))

    def stop(self) -> None:
        if self.holder is None:
            return
        pids = self.pids()
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)
        for p in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        self.holder.kill()
        self.holder.wait()
        self.holder = None
        shutil.rmtree(self.tmp, ignore_errors=True)
