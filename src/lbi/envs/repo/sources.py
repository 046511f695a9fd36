"""Named repositories of one `repo` environment and their pristine snapshots.

With `env_options.repo.path` the environment has one repository, named after its folder (or
`name`); without it, the shipped `wordstats` demo. The `repo-bugs` projects (projects.PYPI) are
always reachable by name, fetched from PyPI the first time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lbi.envs.base import EnvError
from lbi.envs.repo.projects import DEMO, PYPI, FetchError, fetch
from lbi.envs.repo.workspace import source_state, take_snapshot

DEMO_NAME = "wordstats"


class Sources:
    def __init__(self, opts: dict[str, Any], cache_root: Path, data_dir: Path) -> None:
        self.cache_root = cache_root
        self.data_dir = data_dir
        self.user_path = Path(opts["path"]).expanduser().resolve() if opts.get("path") else None
        if self.user_path is not None and not self.user_path.is_dir():
            raise ValueError(f"env_options.repo.path {self.user_path} is not a folder")
        self.user_pythonpath = opts.get("pythonpath")
        self.default = str(opts.get("name") or self.user_path.name) if self.user_path else DEMO_NAME
        self._snaps: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        if self.user_path is not None and name == self.default:
            return self.user_path
        if name == DEMO_NAME:
            return DEMO
        if name in PYPI:
            try:
                return fetch(PYPI[name], self.data_dir)
            except FetchError as e:
                raise EnvError(str(e)) from None
        raise EnvError(f"unknown repository {name!r}; known: {self.default}, {', '.join(PYPI)}")

    def pythonpath(self, name: str) -> list[str]:
        """Folders (relative to the repository) that tests import the package from."""
        if self.user_path is not None and name == self.default and self.user_pythonpath:
            return str(self.user_pythonpath).split(":")
        if name in PYPI and name != self.default:
            return [PYPI[name].pythonpath]
        return ["src", "."] if (self.path(name) / "src").is_dir() else ["."]

    def test_env(self, name: str) -> dict[str, str]:
        """Variables for the sandbox. The shipped projects need no pytest plug-ins, and the ones
        installed beside lbi (hypothesis, anyio, ...) are not theirs: loading them took ~5 of the
        ~7 s of one inflection test run. A user's repository keeps autoloading (its tests may
        need a plug-in); `PYTEST_DISABLE_PLUGIN_AUTOLOAD=1` can lead its `test_cmd`."""
        if self.user_path is not None and name == self.default:
            return {}
        return {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def snapshot(self, name: str) -> Path:
        """The pristine one-commit copy of repository `name` at its current commit or content."""
        if name not in self._snaps:
            src = self.path(name)
            state = source_state(src)
            dest = self.cache_root / "snapshots" / f"{name}-{state[:16]}"
            self._snaps[name] = take_snapshot(src, dest)
        return self._snaps[name]
