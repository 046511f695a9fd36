"""A run: its folder, store, config, model doors (sharing one cache and one accountant), embedder.

Commands that start or extend a run take `--run NAME`; the default name is derived from the
command's environment, model and config, so the same command resumes the same run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.config import Config, dump_config
from lbi.envs.base import ENVS, EnvSpec
from lbi.store import DB_NAME, RunStore
from lbi.types import content_id

if TYPE_CHECKING:
    from lbi.embed.base import Embedder
    from lbi.models.accounting import Accountant
    from lbi.models.cache import CallCache
    from lbi.models.door import ModelDoor


IDENTITY = "identity"  # store meta: the env and model a run was created with


class RunError(RuntimeError):
    pass


TRANSPORT_FIELDS = ("timeout_s", "max_connections", "transport", "api_key_env", "use_probe")


def check_inputs(config: Config) -> None:
    """Resolve the environment and model names (cheap: nothing is built or loaded)."""
    from lbi.models.registry import resolve

    ENVS.resolve(config.env)
    roles = [config.role(r) for r in ("tasks", "labels", "query")]
    for spec in dict.fromkeys([config.model, *config.extra_models, *config.synth.judges, *roles]):
        resolve(spec, config)


def _check_prices(config: Config) -> None:
    """A paid model needs a price (`prices:`), or the budget could never trip."""
    from lbi.models.accounting import check_prices

    check_prices(config)


# Settings added after runs were named: (path, default).
_LATER_DEFAULTS: tuple[tuple[tuple[str, ...], object], ...] = (
    (("synth", "seed"), 0),
    (("models", "thinking"), "auto"),
    (("synth", "grade_threshold"), 4.0),
    (("models", "max_tokens", "thinking"), 2048),
    (("models", "openai", "strict"), "auto"),
)


def default_run_name(config: Config) -> str:
    """Derived from what the dataset depends on, so `lbi synth` and a later `lbi eval` with the
    same environment, model and synthesis settings share one run."""
    basis = config.model_dump(
        mode="json",
        exclude={
            "run_root": True,
            "cache": True,
            "door": True,
            "budget": True,
            "prices": True,
            "eval": True,
            "retrieval": True,
            "executor": True,
            "run": True,
            # How calls travel, not what they answer: changing these must not open a new run.
            "models": {"openai": set(TRANSPORT_FIELDS), "local": {"threads", "timeout_s"}},
        },
    )
    # Added later: at their defaults they stay out, so earlier runs keep their names.
    for path, default in _LATER_DEFAULTS:
        section = basis
        for part in path[:-1]:
            section = section[part]
        if section.get(path[-1]) == default:
            del section[path[-1]]
    for key in ("endpoints", "roles"):  # top-level sections added later, empty by default
        if not any(basis.get(key, {}).values()):
            basis.pop(key, None)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{config.env}-{config.model}").strip("-")
    return f"{slug[:60]}-{content_id(basis, n=6)}"


class RunContext:
    def __init__(self, name: str, config: Config, *, create: bool = True) -> None:
        self.name = name
        self.config = config
        self.dir = Path(config.run_root) / name
        if not create and not self.dir.is_dir():
            raise RunError(f"no run named {name!r} under {config.run_root}/ (see `lbi runs list`)")
        existing = (self.dir / DB_NAME).is_file()
        if create:
            check_inputs(config)  # before anything is on disk: a failed command leaves no folder
            if not existing:
                _check_prices(config)
        self.store = RunStore(self.dir, create=create)
        self._doors: dict[str, ModelDoor] = {}
        self._cache: CallCache | None = None
        self._accountant: Accountant | None = None
        self._embedder: Embedder | None = None
        if create:
            self._claim()  # another env or model on this run is the first thing to say
            if existing:
                _check_prices(config)
            (self.dir / "config.yaml").write_text(dump_config(config))

    def _claim(self) -> None:
        """A run holds one environment and one model, recorded when it is created: extending it
        with others would merge two datasets silently, so that is refused."""
        mine = {"env": self.config.env, "model": self.config.model}
        held = self.store.get_meta(IDENTITY)
        if held is None:
            self.store.set_meta(IDENTITY, mine)
            return
        if held != mine:
            self.store.close()
            raise RunError(
                f"run {self.name!r} holds env {held['env']} and model {held['model']}, not "
                f"env {mine['env']} and model {mine['model']}: start a new run with --run NEW "
                f"(or leave --run out to get one named after these settings)"
            )

    # -- models ---------------------------------------------------------------------------
    @property
    def accountant(self) -> Accountant:
        if self._accountant is None:
            from lbi.models.accounting import Accountant, set_run_accountant

            prior = self.store.get_meta("accounting")
            self._accountant = (
                Accountant.from_snapshot(prior, self.config) if prior else Accountant(self.config)
            )
            set_run_accountant(self._accountant)  # doors opened elsewhere count here too
        return self._accountant

    def door(self, spec: str | None = None) -> ModelDoor:
        spec = spec or self.config.model
        if spec not in self._doors:
            from lbi.models.cache import CallCache
            from lbi.models.door import open_door

            if self._cache is None and self.config.cache.enabled:
                self._cache = CallCache(self.config.cache_path)
            self._doors[spec] = open_door(spec, self.config, self.accountant, self._cache)
        return self._doors[spec]

    def judges(self) -> list[ModelDoor]:
        specs = self.config.synth.judges or [self.config.model, *self.config.extra_models]
        return [self.door(s) for s in dict.fromkeys(specs)]

    def commit(
        self,
        records: list[Any] | tuple[Any, ...] = (),
        marks: list[tuple[str, str]] | None = None,
        replace: bool = False,
        drop: list[tuple[str, str]] | None = None,
    ) -> None:
        """Store a unit of work's outputs, its done-marks and the spend so far in one transaction
        (and delete the `drop` records: the failure a retried unit leaves behind)."""
        meta = {"accounting": self._accountant.snapshot()} if self._accountant is not None else None
        self.store.put(records, marks or [], replace=replace, meta=meta, drop=drop or [])

    def save_accounting(self) -> None:
        """Persist this session's spend on top of earlier sessions' (budget spans resumes)."""
        if self._accountant is None:
            return
        self.store.set_meta("accounting", self._accountant.snapshot())

    # -- embeddings and environments ------------------------------------------------------------
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from lbi.embed.base import make_embedder

            self._embedder = make_embedder(self.config.embed.name, self.config)
        return self._embedder

    def env_factory(self, spec: str | None = None) -> EnvSpec:
        """A picklable factory: the Ray executor builds the environment on a worker with it."""
        return EnvSpec(spec or self.config.env, self.config)

    async def aclose(self) -> None:
        self.save_accounting()
        if self._accountant is not None:
            from lbi.models.accounting import set_run_accountant

            set_run_accountant(None)
        for door in self._doors.values():
            await door.aclose()
        if self._cache is not None:
            self._cache.close()
        self.store.close()

    def info(self) -> dict[str, Any]:
        from lbi.types import Doc, EvalResult, Example, Failure, Task, Trajectory, Verdict

        return {
            "name": self.name,
            "dir": str(self.dir),
            "counts": {
                c.kind: self.store.count(c)
                for c in (Doc, Task, Trajectory, Example, Verdict, EvalResult, Failure)
            },
            "accounting": self.store.get_meta("accounting", {}),
        }


def open_run(cfg: Config, run: str | None) -> RunContext:
    """Start or extend a run: `run`, or the name derived from the config."""
    return RunContext(run or default_run_name(cfg), cfg)


def existing_run(run: str, config: Path | None, sets: list[str] | None) -> RunContext:
    """Open a run for reading: its stored config, then --config and --set on top."""
    import yaml

    from lbi.config import apply_override, config_from_dict, load_config

    cfg = load_config(config, sets)
    stored = Path(cfg.run_root) / run / "config.yaml"
    if not stored.is_file():
        return RunContext(run, cfg, create=False)  # raises a clear "no run named" error
    data = yaml.safe_load(stored.read_text()) or {}
    if config is not None:
        _deep_merge(data, yaml.safe_load(Path(config).read_text()) or {})
    for assignment in sets or []:
        apply_override(data, assignment)
    return RunContext(run, config_from_dict(data), create=False)


def _deep_merge(base: dict, top: dict) -> None:
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        else:
            base[k] = v
