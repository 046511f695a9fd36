"""Where a repository's files come from: the shipped demo, a pinned PyPI sdist, or a user's path.

The `repo-bugs` projects are small pure-Python libraries whose sdists ship their tests. Each is
fetched once from the package index's JSON API (PEP 691; `PIP_INDEX_URL` or PyPI), its SHA-256
checked against the pin while it streams in, and only then unpacked (tarfile's `data` filter)
under `<data_dir>/<name>-<version>`. Nothing of it is built or run: `pip download` of an sdist
runs its setup code to read metadata, before any hash check of lbi's. The default `data_dir` is a user cache
shared by every run (`$XDG_CACHE_HOME/lbi/repo-sdists`); `python -m lbi.envs.repo.projects`
fetches them all there ahead of time (`make install-test` does), so nothing waits on the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
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
        try:
            _download(sdist_url(project), sdist, project.sha256)
        except (OSError, ValueError) as e:
            raise FetchError(f"cannot fetch {project.folder}: {e}") from None
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        with contextlib.suppress(OSError):  # another process renamed its copy first: keep that
            os.rename(tmp / project.folder, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def sdist_url(project: Project) -> str:
    """The address of the project's sdist, from the index's JSON project page (PEP 691)."""
    page = f"{index_url()}/{project.name}/"
    req = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        body, kind = r.read(), r.headers.get_content_type()
    want = f"{project.folder}.tar.gz"
    if kind.endswith("json"):
        links = [f["url"] for f in json.loads(body).get("files", []) if f.get("filename") == want]
    else:  # an index that serves only the HTML simple API (PEP 503)
        links = re.findall(r'href="([^"#]*/' + re.escape(want) + r')(?:#[^"]*)?"', body.decode())
    if not links:
        raise ValueError(f"{page} lists no {want}")
    return urllib.parse.urljoin(page, links[0])


def _download(url: str, dest: Path, sha256: str) -> None:
    """Stream `url` into `dest`, hashing as it comes; a wrong hash deletes it and raises."""
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as r, dest.open("wb") as f:
        while chunk := r.read(1 << 16):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != sha256:
        dest.unlink()
        raise ValueError(f"{url} has sha256 {h.hexdigest()}, expected {sha256}; not unpacked")


def main() -> int:
    for project in PYPI.values():
        print(fetch(project, default_data_dir()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
