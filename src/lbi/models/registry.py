"""Model spec strings -> backends. `local`, `local:PATH.gguf`, `scripted`, `openai:MODEL`, `hf:PATH`.

Backends register a factory under their prefix; modules are imported lazily so that a user
of `openai:` never loads llama.cpp and vice versa.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from lbi.models.base import Model, ModelError

if TYPE_CHECKING:
    from lbi.config import Config

Factory = Callable[[str, "Config"], Model]  # (argument after the colon, config) -> backend

_FACTORIES: dict[str, Factory] = {}
_LAZY: dict[str, str] = {
    "local": "lbi.models.local",
    "scripted": "lbi.models.scripted",
    "openai": "lbi.models.openai_backend",
    "hf": "lbi.models.hf",
}


def register(prefix: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        _FACTORIES[prefix] = factory
        return factory

    return deco


def split_spec(spec: str) -> tuple[str, str]:
    prefix, _, arg = spec.partition(":")
    return prefix.strip(), arg.strip()


def known_prefixes() -> list[str]:
    return sorted(set(_FACTORIES) | set(_LAZY))


def make_model(spec: str, config: Config) -> Model:
    prefix, arg = split_spec(spec)
    if prefix not in _FACTORIES and prefix in _LAZY:
        try:
            importlib.import_module(_LAZY[prefix])
        except ImportError as e:
            raise ModelError(
                f"model {spec!r} needs a missing package ({e.name}); install lbi with its extras"
            ) from None
    if prefix not in _FACTORIES:
        raise ModelError(f"unknown model {spec!r}; known prefixes: {', '.join(known_prefixes())}")
    return _FACTORIES[prefix](arg, config)
