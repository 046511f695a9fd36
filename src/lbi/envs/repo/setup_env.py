"""The `setup` command: run once per repository state and command, cached, shared read-only.

It runs in the sandbox with network (to install packages) on a throwaway copy of the snapshot,
with `/env` writable; episodes then see `/env` read-only (and `/env/bin` first on PATH).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from lbi.envs.base import EnvError
from lbi.envs.repo.sandbox import SANDBOX_UID, Limits, Sandbox
from lbi.envs.repo.workspace import copy_workspace, remove_tree


def prepare_env(snapshot: Path, setup: str, cache_root: Path, limits: Limits) -> Path:
    key = hashlib.sha256(f"{snapshot.name}\0{setup}".encode()).hexdigest()[:16]
    env_dir = cache_root / "envs" / key
    if (env_dir / ".lbi-ready").exists():
        return env_dir
    shutil.rmtree(env_dir, ignore_errors=True)
    env_dir.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(env_dir, SANDBOX_UID, SANDBOX_UID)
    tmp = Path(tempfile.mkdtemp(prefix="lbi-repo-setup-"))
    tmp.chmod(0o755)
    try:
        ws = copy_workspace(snapshot, tmp / "repo")
        sandbox = Sandbox(ws, binds={"/env": env_dir}, network=True)
        result = sandbox.run(setup, replace(limits, timeout_s=max(limits.timeout_s, 900)))
    finally:
        remove_tree(tmp)
    if result.exit_code != 0:
        raise EnvError(f"env_options.repo.setup failed:\n{result.render()[-2000:]}")
    (env_dir / ".lbi-ready").write_text(setup)
    return env_dir
