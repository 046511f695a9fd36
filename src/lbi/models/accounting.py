"""Token, cost and failure accounting for every call through the door, and the run's budget.

Why here and not in each stage: the door is the one place that sees every call, so totals are
complete by construction. Totals can start from a previous run's snapshot, so a resumed run
keeps counting toward the same cap instead of getting a fresh budget each restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lbi.config import BudgetConfig, Config, Price
from lbi.models.base import BudgetExceeded, ChatResponse, ModelError
from lbi.models.endpoints import is_local


@dataclass
class Stats:
    calls: int = 0  # answers from a backend (cache hits are counted apart)
    cache_hits: int = 0
    retries: int = 0  # transient errors that were retried
    failures: int = 0  # calls that failed for good
    failure_reasons: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    reasoning_tokens: int = 0  # part of completion_tokens (and of their cost)
    truncated: int = 0  # answers still cut at the token limit after the larger-limit retry
    timeouts: int = 0  # attempts that got no answer in time (their wait is in latency_s)
    cached_prompt_tokens: int = 0  # prompt tokens the server took from its prompt cache
    estimated_calls: int = 0  # calls whose server sent no token counts (lbi counted them)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stats:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["failure_reasons"] = dict(known.get("failure_reasons") or {})
        return cls(**known)

    def add(self, other: Stats) -> None:
        for name in _NUMBERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.failure_reasons.items():
            self.failure_reasons[reason] = self.failure_reasons.get(reason, 0) + n


_NUMBERS = (
    "calls",
    "cache_hits",
    "retries",
    "failures",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "cost_usd",
    "reasoning_tokens",
    "truncated",
    "timeouts",
    "cached_prompt_tokens",
    "estimated_calls",
)


def _reason_key(reason: str) -> str:
    """Reasons become dict keys in a snapshot: one line, bounded length."""
    line = reason.strip().splitlines()[0] if reason.strip() else "unknown"
    return line[:160]


class Accountant:
    """Per-stage and total stats; raises `BudgetExceeded` before a call once the cap is hit.

    The cap is checked before each backend call, so concurrent calls already in flight may
    finish past it; the overshoot is bounded by the door's concurrency.
    """

    def __init__(
        self,
        config: Config | None = None,
        prior: dict[str, Any] | None = None,
        *,
        prices: dict[str, Price] | None = None,
        budget: BudgetConfig | None = None,
    ) -> None:
        cfg = config or Config()
        self.prices = prices if prices is not None else dict(cfg.prices)
        self.budget = budget if budget is not None else cfg.budget
        # Totals from before a resume count toward the budget but are not re-split per stage.
        self.prior = Stats.from_json(prior.get("total", prior)) if prior else Stats()
        self.stages: dict[str, Stats] = {}
        self.models: dict[str, Stats] = {}  # the same calls, by model spec

    def stage(self, name: str) -> Stats:
        stats = self.stages.get(name)
        if stats is None:
            stats = self.stages[name] = Stats()
        return stats

    @property
    def total(self) -> Stats:
        total = Stats()
        total.add(self.prior)
        for stats in list(self.stages.values()):
            total.add(stats)
        return total

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
    ) -> float:
        """USD at the configured price; prompt tokens served from the provider's cache at its
        `cached_prompt` price where one is set."""
        price = self.prices.get(model)
        if price is None:
            return 0.0
        cached = min(max(0, cached_tokens), prompt_tokens)
        cached_price = price.prompt if price.cached_prompt is None else price.cached_prompt
        prompt = (prompt_tokens - cached) * price.prompt + cached * cached_price
        return (prompt + completion_tokens * price.completion) / 1e6

    def check_budget(self) -> None:
        """Raise `BudgetExceeded` if the run has already spent its tokens or money."""
        if self.budget.max_tokens is None and self.budget.max_cost_usd is None:
            return
        total = self.total
        if self.budget.max_tokens is not None and total.tokens >= self.budget.max_tokens:
            raise BudgetExceeded(
                f"token budget reached: {total.tokens} of {self.budget.max_tokens} tokens used"
            )
        if self.budget.max_cost_usd is not None and total.cost_usd >= self.budget.max_cost_usd:
            raise BudgetExceeded(
                f"cost budget reached: ${total.cost_usd:.4f} of ${self.budget.max_cost_usd:.4f} spent"
            )

    def record_call(self, stage: str, model: str, response: ChatResponse, latency_s: float) -> None:
        cost = self.cost(
            model, response.prompt_tokens, response.completion_tokens, response.cached_prompt_tokens
        )
        # Each call on its stage's books and on its model's (an endpoint per role: each model
        # spec names its endpoint).
        book = self.models.get(model)
        if book is None:
            book = self.models[model] = Stats()
        for stats in (self.stage(stage), book):
            stats.calls += 1
            stats.prompt_tokens += response.prompt_tokens
            stats.completion_tokens += response.completion_tokens
            stats.reasoning_tokens += response.reasoning_tokens
            stats.latency_s += latency_s
            stats.cost_usd += cost
            stats.cached_prompt_tokens += response.cached_prompt_tokens
            stats.estimated_calls += int(response.usage_estimated)

    def record_truncated(self, stage: str) -> None:
        self.stage(stage).truncated += 1

    def record_hit(self, stage: str) -> None:
        self.stage(stage).cache_hits += 1

    def record_timeout(self, stage: str, seconds: float) -> None:
        """An attempt that timed out: counted, and the time it took is spent time too."""
        stats = self.stage(stage)
        stats.timeouts += 1
        stats.latency_s += seconds

    def record_retry(self, stage: str) -> None:
        self.stage(stage).retries += 1

    def record_failure(self, stage: str, reason: str) -> None:
        stats = self.stage(stage)
        stats.failures += 1
        key = _reason_key(reason)
        stats.failure_reasons[key] = stats.failure_reasons.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-able: {"stages": {name: stats}, "prior": stats, "total": stats}."""
        return {
            # A copy first: an environment's thread (tau2's customer) may add a stage meanwhile.
            "stages": {name: s.to_json() for name, s in sorted(dict(self.stages).items())},
            "models": {name: s.to_json() for name, s in sorted(dict(self.models).items())},
            "prior": self.prior.to_json(),
            "total": self.total.to_json(),
        }

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any], config: Config | None = None) -> Accountant:
        """Restore a snapshot exactly (stages and prior), e.g. to continue after a resume."""
        acc = cls(config, prior=snapshot.get("prior") or None)
        acc.stages = {n: Stats.from_json(s) for n, s in (snapshot.get("stages") or {}).items()}
        acc.models = {n: Stats.from_json(s) for n, s in (snapshot.get("models") or {}).items()}
        return acc


# The accountant of the run in progress. Calls made outside the run's own doors (the tau2
# simulated customer, whose door an environment opens on its own thread) count here too, so
# they show in `lbi stats` and toward the run's budget.
_ACTIVE: Accountant | None = None


def set_run_accountant(accountant: Accountant | None) -> None:
    global _ACTIVE
    _ACTIVE = accountant


def run_accountant(config: Config | None = None) -> Accountant:
    """The run's accountant when a run is open in this process, else a fresh one."""
    return _ACTIVE if _ACTIVE is not None else Accountant(config)


def paid_models(config: Config) -> list[str]:
    """The models a run will call that bill per token (chat, judges, the simulated customer,
    embeddings): `openai:` on a remote host."""
    specs = [config.model, *config.extra_models, *config.synth.judges, config.embed.name]
    specs += [config.role(r) for r in ("tasks", "labels", "query")]
    user = (config.env_options.get("tau2") or {}).get("user_model")
    if isinstance(user, str) and user:
        specs.append(user)

    def paid(spec: str) -> bool:
        prefix = spec.partition(":")[0]
        if prefix in config.endpoints:  # a named endpoint: paid unless marked free or local
            ep = config.endpoints[prefix]
            return not (ep.free or is_local(ep.base_url))
        return prefix == "openai" and not is_local(config.models.openai.base_url)

    return [s for s in dict.fromkeys(specs) if paid(s)]


def check_prices(config: Config) -> None:
    """A paid model without a price would cost $0 and never trip `budget.max_cost_usd`."""
    if config.budget.allow_unpriced:
        return
    missing = [s for s in paid_models(config) if s not in config.prices]
    if missing:
        raise ModelError(
            f"no price for {', '.join(missing)} in prices: add `prices: {{{missing[0]}: "
            "{prompt: USD_PER_1M, completion: USD_PER_1M}}` to the config, or "
            "--set budget.allow_unpriced=true to run it uncounted"
        )
