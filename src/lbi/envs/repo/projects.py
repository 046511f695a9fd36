"""Where a repository's files come from: the shipped demo, a pinned PyPI sdist, or a user's path.

The `repo-bugs` projects are small pure-Python libraries whose sdists ship their tests. Each is
fetched once with pip (`pip download --no-deps --no-binary :all:`), checked against its pinned
SHA-256 and unpacked under `<data_dir>/<name>-<version>`. The default `data_dir` is a user cache
shared by every run (`$XDG_CACHE_HOME/lbi/repo-sdists`); `python -m lbi.envs.repo.projects`
fetches them all there ahead of time (`make install-test` does), so nothing waits on the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEMO = Path(__file__).parent / "demo_project"


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    sha256: str  # of the sdist
    pythonpath: str  # relative to the repository root, for tests that import the package

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PYPI: dict[str, Project] = {
    p.name: p
    for p in [
        Project(
            "inflection",
            "0.5.1",
            "1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417",
            ".",
        ),
        Project(
            "parse",
            "1.22.4",
            "706d458feed5a81b02768d3156e8070baf6cee7d150a3a3c0cd43101a875c3b5",
            ".",
        ),
        Project(
            "cachetools",
            "8.0.0",
            "5ed01bd676800d51f0025605e4fd8ad0891550513e7b0a4c3da478463764e5c3",
            "src",
        ),
    ]
}


def default_data_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return cache / "lbi" / "repo-sdists"


class FetchError(RuntimeError):
    pass


def fetch(project: Project, data_dir: Path) -> Path:
    """The unpacked sdist of `project` under `data_dir` (downloaded and verified the first time).

    Downloads and unpacks into a private temporary folder first, then renames into place, so
    processes fetching at the same time never see a half-written tree."""
    dest = data_dir / project.folder
    if (dest / "PKG-INFO").exists():
        return dest
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{project.folder}-", dir=data_dir))
    try:
        sdist = tmp / f"{project.folder}.tar.gz"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--no-build-isolation", "-q", "-d", str(tmp)]
        done = subprocess.run(
            [*cmd, f"{project.name}=={project.version}"], capture_output=True, text=True
        )
        if done.returncode != 0 or not sdist.exists():
            raise FetchError(
                f"cannot download {project.folder} from PyPI: {done.stderr.strip()[-300:]}"
            )
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != project.sha256:
            raise FetchError(f"{sdist} has sha256 {digest}, expected {project.sha256}")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        with contextlib.suppress(OSError):  # another process renamed its copy first: keep that
            os.rename(tmp / project.folder, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main() -> int:
    for project in PYPI.values():
        print(fetch(project, default_data_dir()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
