"""The databases lbi ships, found without running an episode: `lbi envs data sql`.

A user can serve one with another tool (sqlite3, datasette, a SQL client) or point a suite's
`db` at it. Each family that ships data has a `shipped_data(arg, config)` function, named here
by module so that listing imports nothing else.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lbi.envs.base import EnvError

if TYPE_CHECKING:
    from lbi.config import Config

SHIPPED = {"sql": "lbi.envs.sql.env", "site": "lbi.envs.web.site"}


@dataclass
class Shipped:
    files: dict[str, Path]  # database name -> SQLite file
    lasting: bool = True  # False: made for this process only, gone when it exits (copy it)
    note: str = ""


def shipped_data(spec: str, config: Config) -> Shipped:
    family, _, arg = spec.partition(":")
    family, _, member = family.partition(".")
    if family not in SHIPPED:
        raise EnvError(f"{spec} ships no database; these do: {', '.join(SHIPPED)}")
    module = importlib.import_module(SHIPPED[family])
    found: Shipped = module.shipped_data(arg or member, config)
    return found


def copy_to(shipped: Shipped, folder: Path) -> dict[str, Path]:
    """Copies of the shipped files in `folder` (made if missing), by database name."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: Path(shutil.copy2(path, folder / path.name)) for name, path in shipped.files.items()
    }
