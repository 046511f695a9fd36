"""Money and tokens the server did not state (issue 27, item 6): prompt tokens served from the
provider's prompt cache are priced at the configured `cached_prompt` price, and an answer that
comes without `usage` is counted by lbi (and marked), so `budget.max_tokens` still trips."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbi.config import Config
from lbi.models.base import BudgetExceeded, ChatRequest
from lbi.models.door import open_door
from lbi.testing.fake_openai import FakeOpenAIServer

KEY_ENV = "LBI_TEST_MONEY_KEY"
SYSTEM = "You are a careful assistant. " * 40  # ~280 tokens, the same in every call


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    yield


def _config(srv: FakeOpenAIServer, tmp_path: Path, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "run_root": str(tmp_path),
        "models": {"openai": {"base_url": srv.base_url, "api_key_env": KEY_ENV}},
        "door": {"backoff_base_s": 0.001, "timeout_s": 5.0},
        "cache": {"enabled": False},
        **extra,
    }
    return Config.model_validate(data)


def _ask(n: int) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"q{n}"}],
        max_tokens=16,
    )


def _calls(cfg: Config, n: int) -> Any:
    async def go() -> Any:
        door = open_door("openai:fake", cfg)
        try:
            for k in range(n):
                await door.chat(_ask(k), stage="s")
            return door.accountant.stage("s")
        finally:
            await door.aclose()

    return asyncio.run(go())


def test_prompt_tokens_from_the_providers_cache_cost_the_cached_price(tmp_path: Path) -> None:
    price = {"prompt": 1.0, "completion": 2.0, "cached_prompt": 0.1}
    with FakeOpenAIServer(prompt_cache=True) as srv:
        cfg = _config(srv, tmp_path, prices={"openai:fake": price})
        stats = _calls(cfg, 3)
    assert stats.cached_prompt_tokens == 2 * (len(SYSTEM) // 4)  # the 2nd and 3rd call's system
    full = stats.prompt_tokens - stats.cached_prompt_tokens
    want = (full * 1.0 + stats.cached_prompt_tokens * 0.1 + stats.completion_tokens * 2.0) / 1e6
    assert stats.cost_usd == pytest.approx(want)
    at_full_price = (stats.prompt_tokens * 1.0 + stats.completion_tokens * 2.0) / 1e6
    assert stats.cost_usd < 0.6 * at_full_price
    # without a cached price, cached tokens cost the prompt price
    with FakeOpenAIServer(prompt_cache=True) as srv:
        cfg = _config(srv, tmp_path, prices={"openai:fake": {"prompt": 1.0, "completion": 2.0}})
        plain = _calls(cfg, 3)
    assert plain.cost_usd == pytest.approx(
        (plain.prompt_tokens * 1.0 + plain.completion_tokens * 2.0) / 1e6
    )


def test_an_answer_without_usage_is_counted_by_lbi_and_the_token_budget_trips(
    tmp_path: Path,
) -> None:
    with FakeOpenAIServer(usage=False) as srv:
        cfg = _config(srv, tmp_path)
        stats = _calls(cfg, 2)
        assert stats.estimated_calls == 2
        assert stats.prompt_tokens >= 2 * (len(SYSTEM) // 4) and stats.completion_tokens > 0
        budget = _config(srv, tmp_path, budget={"max_tokens": 300})
        with pytest.raises(BudgetExceeded, match="token budget reached"):
            _calls(budget, 3)  # one call spends ~300 counted tokens: the second is refused
