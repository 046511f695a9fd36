"""git that no repository can configure: lbi's own calls to git on a user's or agent's tree.

A repository (its `.git/config`, a `.gitconfig` in its tree, a `.git` file pointing elsewhere)
is hostile input. git runs programs named by configuration (`core.fsmonitor`, hooks, filter
drivers, `diff.external`, ...), so every call here:
- reads no system or global configuration (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL` set to
  lbi's own file) and has an empty `HOME`/`XDG_CONFIG_HOME` of its own, so no `.gitconfig` of
  the tree or of the user is read;
- overrides, on the command line (which beats a repository's own config), every key that names
  a program or a hook: hooks go to an empty folder, fsmonitor is off, no transport is allowed;
- never asks for a credential or a pager;
- reads a repository's files with plumbing (`ls-tree`, `cat-file`), which applies no filters,
  rather than `archive` or `checkout` (which run the smudge filters of the repository's config).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from functools import cache
from pathlib import Path

_IDENTITY = {
    "GIT_AUTHOR_NAME": "lbi",
    "GIT_AUTHOR_EMAIL": "lbi@localhost",
    "GIT_COMMITTER_NAME": "lbi",
    "GIT_COMMITTER_EMAIL": "lbi@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}
# Keys that make git run something: set by lbi on every command line (command line > repo config).
_OVERRIDES = {
    "core.fsmonitor": "false",
    "core.untrackedCache": "false",
    "core.pager": "cat",
    "core.editor": "true",
    "core.sshCommand": "false",
    "core.gitProxy": "false",
    "core.askPass": "false",
    "core.alternateRefsCommand": "false",
    "diff.external": "",
    "protocol.allow": "never",
    "credential.helper": "",
    "gc.auto": "0",
    "maintenance.auto": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "submodule.recurse": "false",
    "uploadpack.packObjectsHook": "",
}


@cache
def _home() -> Path:
    """An empty folder of lbi's, with lbi's own global config (a protected config: the only
    place git honours `safe.directory`, needed for trees owned by another uid)."""
    home = Path(tempfile.mkdtemp(prefix="lbi-git-home-"))
    (home / "hooks").mkdir()
    (home / "gitconfig").write_text("[safe]\n\tdirectory = *\n[init]\n\tdefaultBranch = main\n")
    return home


def empty_git_dir() -> Path:
    """An empty repository of lbi's: `--git-dir` for commands on a tree whose own `.git` may
    have been written by an agent (its config could name filter drivers)."""
    bare = _home() / "empty.git"
    if not (bare / "HEAD").exists():
        git(["init", "-q", "--bare", str(bare)], _home())
    return bare


def git_env() -> dict[str, str]:
    home = _home()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "LANG": "C",
        **_IDENTITY,
    }


def git_argv(args: list[str]) -> list[str]:
    argv = ["git", "-c", f"core.hooksPath={_home() / 'hooks'}"]
    for key, value in _OVERRIDES.items():
        argv += ["-c", f"{key}={value}"]
    return [*argv, *args]


def git(
    args: list[str], cwd: Path, *, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run git with lbi's configuration only; `cwd` is the repository."""
    return subprocess.run(
        git_argv(args), cwd=cwd, env=git_env(), input=input, capture_output=True, check=check
    )


def git_text(args: list[str], cwd: Path) -> str:
    return git(args, cwd).stdout.decode("utf-8", "replace").strip()


def unsafe_path(path: str) -> bool:
    """A tree path lbi will not write: absolute, `..`, or any `.git` component (any case)."""
    parts = path.split("/")
    return path.startswith("/") or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)


def export_head(repo: Path, dest: Path) -> int:
    """Write the files of `repo`'s HEAD commit into `dest`, as stored (no filters, no hooks):
    regular files with their executable bit, symbolic links as links (never followed here);
    submodules and unsafe paths are skipped. Returns the number of files written."""
    listing = git(["ls-tree", "-r", "-z", "--full-tree", "HEAD"], repo).stdout
    entries = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, raw = item.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = raw.decode("utf-8", "surrogateescape")
        if kind == "blob" and not unsafe_path(path):
            entries.append((mode, sha, path))
    if not entries:
        return 0
    batch = subprocess.Popen(
        git_argv(["cat-file", "--batch"]),
        cwd=repo,
        env=git_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert batch.stdin is not None and batch.stdout is not None
    try:
        for mode, sha, path in entries:
            batch.stdin.write(sha.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise ValueError(f"git cat-file: unexpected answer for {path}: {header!r}")
            data = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)  # the newline after each object
            if not _make_parents(dest, path):
                continue  # a crafted tree: a path below a link, or a duplicate name
            target = dest / path
            if mode == "120000":
                os.symlink(os.fsdecode(data), target)
                continue
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            target.chmod(0o755 if mode == "100755" else 0o644)
    finally:
        batch.stdin.close()
        batch.wait()
    return len(entries)


def _make_parents(dest: Path, path: str) -> bool:
    """Create the folders of `path` under `dest`, refusing to pass through anything that is not
    a real folder (a link written earlier would lead outside) or to replace an existing entry."""
    here = dest
    for part in path.split("/")[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            return False
        here.mkdir(exist_ok=True)
    return not os.path.lexists(dest / path)
