"""Model spec strings -> backends. `local`, `local:PATH.gguf`, `local:NAME` (catalogue), `scripted`,
`openai:MODEL`, `hf:PATH`.

Built-in backends are imported on first use, so that a user of `openai:` never loads llama.cpp
and vice versa; installed packages add backends under the `lbi.models` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lbi.models.base import Model, ModelError
from lbi.registry import Registry

if TYPE_CHECKING:
    from lbi.config import Config

Factory = Callable[[str, "Config"], Model]  # (argument after the colon, config) -> backend

MODELS: Registry[Factory] = Registry(
    kind="model",
    group="lbi.models",
    error=ModelError,
    builtins={
        "local": "lbi.models.local",
        "scripted": "lbi.models.scripted",
        "openai": "lbi.models.openai_backend",
        "endpoint": "lbi.models.openai_backend",  # `endpoint:NAME:MODEL`, a named endpoint
        "hf": "lbi.models.hf",
    },
)


def register(prefix: str) -> Callable[[Factory], Factory]:
    return MODELS.register(prefix)


def split_spec(spec: str) -> tuple[str, str]:
    prefix, _, arg = spec.partition(":")
    return prefix.strip(), arg.strip()


def make_model(spec: str, config: Config) -> Model:
    prefix, arg = split_spec(spec)
    if prefix in config.endpoints:  # `NAME:MODEL` on the named endpoint (config `endpoints:`)
        endpoint: Model = MODELS.make(f"endpoint:{prefix}:{arg}", config)
        return endpoint
    model: Model = MODELS.make(f"{prefix}:{arg}" if arg else prefix, config)
    return model


def resolve(spec: str, config: Config) -> None:
    """Check a model spec names a backend or a configured endpoint (loads nothing)."""
    prefix, _ = split_spec(spec)
    if prefix not in config.endpoints:
        MODELS.resolve(spec)
