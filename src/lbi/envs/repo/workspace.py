"""Pristine snapshots of a repository at a fixed commit, and per-episode copies of them.

A snapshot is taken once per repository state: a git repository is exported at its HEAD commit
(only tracked files, read with git plumbing and no configuration of the repository's: git_safe),
a plain folder is copied without caches, virtualenvs and `.git` entries.
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

from lbi.envs.repo.git_safe import empty_git_dir, export_head, git, git_text
from lbi.envs.repo.sandbox import SANDBOX_UID

SKIP = {".git", "__pycache__", ".venv", "venv", ".tox", ".nox", ".pytest_cache", ".mypy_cache"}
SKIP |= {".ruff_cache", "node_modules", ".eggs", "build", "dist"}


def source_state(path: Path) -> str:
    """The commit of a git repository, or a content hash of a folder's files."""
    if (path / ".git").exists():
        try:
            return git_text(["rev-parse", "--verify", "HEAD^{commit}"], path)
        except subprocess.CalledProcessError:
            pass
    h = hashlib.sha256()
    for f in iter_files(path):
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def iter_files(root: Path) -> list[Path]:
    """Regular files under `root`, sorted, skipping caches and VCS folders (never follows links).

    A `.git` *file* (a gitfile pointing at another repository) is skipped too: copied into a
    snapshot it would send lbi's own `git init` to the folder it names."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if name.lower() == ".git" or name.endswith((".pyc", ".pyo")):
                continue
            if stat.S_ISREG(os.lstat(p).st_mode):
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
    if not (path / ".git").exists() or not _exported(path, tmp):
        for f in iter_files(path):
            target = tmp / f.relative_to(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    # lbi's own repository (git_safe: no configuration, hooks or filters from the tree).
    git(["init", "-q"], tmp)
    git(["add", "-A"], tmp)
    git(["commit", "-q", "--no-verify", "-m", "pristine", "--allow-empty"], tmp)
    try:
        os.replace(tmp, dest)
    except OSError:  # another episode's snapshot landed first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest / ".git").exists():
            raise
    return dest


def _exported(repo: Path, dest: Path) -> bool:
    """Export `repo`'s HEAD into `dest`; False (and nothing written) if it has no commit."""
    try:
        export_head(repo, dest)
    except subprocess.CalledProcessError:
        return False
    return True


def copy_workspace(
    snapshot: Path, dest: Path, patch: str | None = None, uid: int = SANDBOX_UID
) -> Path:
    """A private, writable copy of the snapshot for one episode (owned by the sandbox `uid`),
    with `patch` (a unified diff, e.g. a task's injected bug) applied."""
    shutil.copytree(snapshot, dest, symlinks=True)
    if patch:
        apply_patch(dest, patch)
    if os.geteuid() == 0:
        chown_tree(dest, uid)
    return dest


def tree_bytes(root: Path) -> int:
    """Disk space the files under `root` take (allocated blocks; links never followed)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


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
    """`git apply` a unified diff (paths a/... b/...) in `root`; raises ValueError if it fails.
    The tree's own `.git` (an agent may have written it) is not used: lbi's empty one is."""
    args = ["--git-dir", str(empty_git_dir()), "--work-tree", str(root), "apply"]
    done = git([*args, "--whitespace=nowarn", "-"], root, input=patch.encode(), check=False)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise ValueError(f"patch does not apply: {err[:300]}")
