"""Pristine snapshots of a repository at a fixed commit, and per-episode copies of them.

A snapshot is taken once per repository state: a git repository is exported at its HEAD commit
(`git archive`, so only tracked files), a plain folder is copied without caches and virtualenvs.
The snapshot is itself made a one-commit git repository so an agent can run `git diff`.

Episode copies are plain recursive copies (`shutil.copytree`). bench/repo_env.py times the
candidates on each project's snapshot and checks each for honesty (docs/benchmarks.md, "Repo
environment"): hard links (`cp -al`) are faster but not honest, since an in-place write such as
`echo >> f` in the episode changes the snapshot; reflinks (`cp --reflink=always`) are not
supported on ext4, where it ran; `git worktree add` was not reliably faster (35-107 ms against
51-91 ms for copytree, load average ~8 on 2 cores) and its `.git` file points into the snapshot,
which the sandbox does not mount, so `git diff` would fail inside; `cp -a` matched copytree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from lbi.envs.repo.sandbox import SANDBOX_UID

SKIP = {".git", "__pycache__", ".venv", "venv", ".tox", ".nox", ".pytest_cache", ".mypy_cache"}
SKIP |= {".ruff_cache", "node_modules", ".eggs", "build", "dist"}
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "lbi",
    "GIT_AUTHOR_EMAIL": "lbi@localhost",
    "GIT_COMMITTER_NAME": "lbi",
    "GIT_COMMITTER_EMAIL": "lbi@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


def _git(args: list[str], cwd: Path) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **_GIT_ENV}
    out = subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def source_state(path: Path) -> str:
    """The commit of a git repository, or a content hash of a folder's files."""
    if (path / ".git").exists():
        try:
            return _git(["rev-parse", "HEAD"], path)
        except subprocess.CalledProcessError:
            pass
    h = hashlib.sha256()
    for f in iter_files(path):
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def iter_files(root: Path) -> list[Path]:
    """Regular files under `root`, sorted, skipping caches and VCS folders (never follows links)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode) and not name.endswith((".pyc", ".pyo")):
                out.append(p)
    return out


def take_snapshot(path: Path, dest: Path) -> Path:
    """Make `dest` a pristine one-commit git copy of `path` (done once; reused when it exists)."""
    if (dest / ".git").exists():
        return dest
    # Its own scratch folder: concurrent episodes (threads of one process, or processes) may
    # snapshot the same repository at once; the first to finish wins, the others discard theirs.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the snapshot from the sandbox's user
    if (path / ".git").exists():
        archive = subprocess.run(
            ["git", "-c", "safe.directory=*", "archive", "HEAD"],
            cwd=path,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    else:
        for f in iter_files(path):
            target = tmp / f.relative_to(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    _git(["init", "-q"], tmp)
    _git(["add", "-A"], tmp)
    _git(["commit", "-q", "-m", "pristine", "--allow-empty"], tmp)
    try:
        os.replace(tmp, dest)
    except OSError:  # another episode's snapshot landed first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest / ".git").exists():
            raise
    return dest


def copy_workspace(snapshot: Path, dest: Path, patch: str | None = None) -> Path:
    """A private, writable copy of the snapshot for one episode (owned by the sandbox uid),
    with `patch` (a unified diff, e.g. a task's injected bug) applied."""
    shutil.copytree(snapshot, dest, symlinks=True)
    if patch:
        apply_patch(dest, patch)
    if os.geteuid() == 0:
        chown_tree(dest, SANDBOX_UID)
    return dest


def chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def remove_tree(root: Path) -> None:
    """Delete a workspace, whatever modes the sandboxed commands left on it."""

    def onerror(func, path, exc):  # type: ignore[no-untyped-def]
        os.chmod(os.path.dirname(path), 0o700)
        func(path)

    shutil.rmtree(root, onerror=onerror)


def digest(root: Path) -> str:
    """A hash of the workspace's files (paths, modes, contents) outside .git and caches."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in (".git", "__pycache__", ".pytest_cache")
        )
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(os.path.relpath(p, root).encode() + b"\0")
            if stat.S_ISLNK(st.st_mode):
                h.update(b"link:" + os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as f:
                    h.update(f.read())
            else:
                h.update(b"special")
    return h.hexdigest()[:16]


def apply_patch(root: Path, patch: str) -> None:
    """`git apply` a unified diff (paths a/... b/...) in `root`; raises ValueError if it fails."""
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "apply", "--whitespace=nowarn", "-"],
        cwd=root,
        input=patch,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ValueError(f"patch does not apply: {done.stderr.strip()[:300]}")
