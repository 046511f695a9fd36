"""One registry mechanism for every kind of plug-in: environments, models, embedders.

A spec string names a factory and gives it an argument: `sql:pets_1`, `openai:gpt-4o-mini`,
`miniwob.click-button`. A factory is found, in this order:

1. registered in-process with `registry.register(name)` (lbi's own, imported on first use from
   the registry's table of built-in modules, or a test's);
2. declared by an installed package under the registry's entry-point group, e.g. in its
   pyproject.toml `[project.entry-points."lbi.envs"] mygame = "mygame.lbi:make_env"`;
3. a `module:attr` spec for code that is not installed but importable (`--env mypkg.envs:make`,
   anything after a second colon is the argument), as Gymnasium accepts for its ids.

Every factory is called as `factory(arg, config)`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def _summary(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


class Registry(Generic[F]):
    """Named factories of one kind, found in-process, through entry points, or by `module:attr`."""

    def __init__(
        self,
        kind: str,
        group: str,
        error: type[Exception],
        builtins: dict[str, str],
        descriptions: dict[str, str] | None = None,
        dotted: bool = False,
    ) -> None:
        self.kind = kind  # "environment", "model", "embedder": for messages
        self.group = group  # the entry-point group third-party packages declare
        self.error = error
        self._builtins = dict(builtins)  # name -> module that registers it when imported
        self._descriptions = dict(descriptions or {})
        self._factories: dict[str, F] = {}
        # `family.member` means `family:member` (miniwob.click-button, tau2.retail)
        self._dotted = dotted

    def register(self, name: str, description: str = "") -> Callable[[F], F]:
        def deco(factory: F) -> F:
            self._factories[name] = factory
            if description:
                self._descriptions[name] = description
            return factory

        return deco

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=self.group)}

    def names(self) -> dict[str, str]:
        """Every name this registry can make, with a one-line description, sorted."""
        eps = self._entry_points()
        out: dict[str, str] = {}
        for name in sorted(set(self._factories) | set(self._builtins) | set(eps)):
            desc = self._descriptions.get(name, "")
            if not desc and name in eps:
                desc = f"(plug-in {eps[name].value}) " + self._plugin_summary(eps[name])
            out[name] = desc.strip()
        return out

    def _plugin_summary(self, ep: importlib.metadata.EntryPoint) -> str:
        try:
            return _summary(ep.load())
        except Exception as e:  # a broken plug-in must not break the listing
            return f"cannot be loaded: {type(e).__name__}: {e}"

    def _known(self, name: str) -> bool:
        return name in self._factories or name in self._builtins or name in self._entry_points()

    def _split(self, spec: str) -> tuple[str, str]:
        name, _, arg = spec.strip().partition(":")
        if self._dotted and "." in name and not self._known(name):
            family, _, member = name.partition(".")
            if self._known(family):
                return family, member + (":" + arg if arg else "")
        return name, arg

    def _load(self, name: str, spec: str) -> F:
        if name in self._factories:
            return self._factories[name]
        if name in self._builtins:
            try:
                importlib.import_module(self._builtins[name])
            except ImportError as e:
                raise self.error(
                    f"{self.kind} {spec!r} needs a missing package ({e.name}); "
                    "install lbi with its extras"
                ) from None
            return self._factories[name]
        ep = self._entry_points().get(name)
        if ep is not None:
            try:
                factory: F = ep.load()
            except Exception as e:
                raise self.error(
                    f"{self.kind} plug-in {name!r} ({ep.value}) cannot be loaded: "
                    f"{type(e).__name__}: {e}"
                ) from None
            return factory
        raise KeyError(name)

    def _from_module(self, module: str, rest: str, spec: str) -> tuple[F, str]:
        attr, _, arg = rest.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            if e.name and module.startswith(e.name):
                raise self._unknown(spec) from None
            raise self.error(f"{self.kind} {spec!r}: importing {module} failed: {e}") from None
        factory = getattr(mod, attr, None)
        if not callable(factory):
            raise self.error(f"{self.kind} {spec!r}: {module} has no callable {attr!r}")
        return factory, arg

    def _unknown(self, spec: str) -> Exception:
        return self.error(
            f"unknown {self.kind} {spec!r}; known: {', '.join(self.names())} "
            "(or MODULE:ATTR for a factory on the Python path)"
        )

    def resolve(self, spec: str) -> tuple[F, str]:
        """The factory a spec names, and the argument to call it with."""
        name, arg = self._split(spec)
        try:
            return self._load(name, spec), arg
        except KeyError:
            pass
        if arg and name:  # module:attr[:arg]
            return self._from_module(name, arg, spec)
        raise self._unknown(spec)

    def make(self, spec: str, config: Any) -> Any:
        factory, arg = self.resolve(spec)
        return factory(arg, config)
