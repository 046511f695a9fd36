"""Each provider's error answers, as the fake server's profiles send them, read for what they
mean: a context overflow is not retried, a completion-token limit that is too large is clamped
to the stated maximum (not dropped), Gemini's retryDelay in the body is honoured."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lbi.config import Config
from lbi.models.base import ChatRequest, ContextOverflow, TransientModelError
from lbi.models.door import ModelDoor, open_door
from lbi.models.endpoints import EndpointStore
from lbi.models.openai_errors import is_context_overflow, read_error
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES, Profile

KEY_ENV = "LBI_TEST_PROVIDER_ERRORS_KEY"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _config(srv: FakeOpenAIServer, tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "run_root": str(tmp_path),
            "cache": {"enabled": False},
            "models": {"openai": {"base_url": srv.base_url, "api_key_env": KEY_ENV}},
            "door": {"backoff_base_s": 0.001, "max_retries": 3, "timeout_s": 5},
        }
    )


def _ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def _with_door(srv: FakeOpenAIServer, tmp_path: Path, fn: Any, model: str = "m") -> Any:
    async def go() -> Any:
        async with open_door(f"openai:{model}", _config(srv, tmp_path)) as door:
            return await fn(door)

    return asyncio.run(go())


@pytest.mark.parametrize("name", [None, *sorted(PROFILES)])
def test_a_context_overflow_in_every_provider_shape_is_not_retried(
    name: str | None, tmp_path: Path
) -> None:
    with FakeOpenAIServer(profile=PROFILES[name] if name else None) as srv:
        srv.faults.append("overflow")
        with pytest.raises(ContextOverflow, match="does not fit the context") as err:
            _with_door(srv, tmp_path, lambda d: d.chat(_ask("a long prompt")))
        assert srv.requests == 1  # refused for good: retrying the same prompt cannot help
    said = str(err.value)
    assert "context" in said and ("4096" in said or "context size" in said)  # the server's words


def test_llama_cpp_overflow_sent_as_500_by_older_builds_is_still_an_overflow() -> None:
    body = '{"error": {"code": 500, "message": "the request exceeds the available context size"}}'
    assert is_context_overflow(500, read_error(body))
    assert not is_context_overflow(500, read_error('{"error": {"message": "out of memory"}}'))


def test_max_tokens_too_large_is_clamped_to_the_stated_maximum(tmp_path: Path) -> None:
    capped = Profile(name="capped", model="m", max_output_tokens=100)
    with FakeOpenAIServer(profile=capped) as srv:

        async def go(door: ModelDoor) -> list[int]:
            first = await door.chat(_ask("one", max_tokens=500))
            assert first.text and not first.truncated
            for n in (300, 40):
                await door.chat(_ask(f"then {n}", max_tokens=n))
            return [b["max_tokens"] for b in srv.bodies]

        sent = _with_door(srv, tmp_path, go)
    # Refused once at 500, then clamped to the stated 100, never unbounded; a smaller limit
    # is sent as it is.
    assert sent == [500, 100, 100, 40]
    stored = EndpointStore(tmp_path / ".cache").get(srv.base_url, "m")
    assert stored is not None and stored.max_output_tokens == 100
    assert "max_tokens" not in stored.refused  # the limit was kept, not dropped


def test_gemini_retry_delay_in_the_body_is_honoured(tmp_path: Path) -> None:
    with FakeOpenAIServer(profile=PROFILES["gemini"], retry_after=0.3) as srv:

        async def go(door: ModelDoor) -> float:
            srv.faults.append("429")
            with pytest.raises(TransientModelError) as err:
                await door.model.complete(_ask("x"))
            assert err.value.retry_after == pytest.approx(0.3)  # no header: the body's RetryInfo
            srv.faults.append("429")
            start = asyncio.get_running_loop().time()
            await door.chat(_ask("y"))
            return asyncio.get_running_loop().time() - start

        # Jittered backoff alone would wait at most 1 ms here; the body said 0.3 s.
        assert _with_door(srv, tmp_path, go) >= 0.3


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ('{"error": {"message": "max_tokens is too large: 9000. This model supports at most 4096 '
         'completion tokens, whereas you provided 9000.", "param": "max_tokens"}}', 4096),
        ('{"type": "error", "error": {"message": "max_tokens: 9000 > 8192, which is the maximum '
         'allowed number of output tokens for claude-x"}}', 8192),
        ('{"object": "error", "message": "max_tokens must be less than or equal to 2048"}', 2048),
        ('{"error": {"message": "max_tokens is too large", "param": "max_tokens"}}', None),
        ('{"error": {"message": "max_tokens must be at most 99999"}}', None),  # not smaller
        ('{"error": {"message": "This model\'s maximum context length is 4096 tokens."}}', None),
    ],
)  # fmt: skip
def test_the_stated_maximum_is_read_from_each_wording(body: str, limit: int | None) -> None:
    from lbi.models.openai_errors import stated_token_limit

    assert stated_token_limit(400, read_error(body), {"max_tokens": 9000}) == limit
