"""The openai backend against the fake server: every fault, through the door's retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lbi.config import Config, OpenAIModelConfig
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest, EndpointError, ModelError, TransientModelError
from lbi.models.door import ModelDoor, open_door
from lbi.models.openai_backend import OpenAIModel, resolve_api_key
from lbi.models.registry import make_model
from lbi.testing.fake_openai import FakeOpenAIServer

KEY_ENV = "LBI_TEST_OPENAI_KEY"
TRANSPORT = {"name": "aiohttp"}  # set per test by the `transport` fixture


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(retry_after=0.02) as server:
        yield server


@pytest.fixture(autouse=True, params=["aiohttp", "sdk"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both transports: they must fail, retry and parse alike."""
    monkeypatch.setitem(TRANSPORT, "name", request.param)
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def config(srv: FakeOpenAIServer, **door: Any) -> Config:
    return Config.model_validate(
        {
            "models": {
                "openai": {
                    "base_url": srv.base_url,
                    "api_key_env": KEY_ENV,
                    "transport": TRANSPORT["name"],
                }
            },
            "cache": {"enabled": False},
            "door": {"backoff_base_s": 0.001, "backoff_max_s": 0.5, "timeout_s": 0.5, **door},
        }
    )


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def with_door(cfg: Config, fn: Any, acc: Accountant | None = None) -> Any:
    async def go() -> Any:
        door = open_door("openai:fake-model", cfg, accountant=acc)
        try:
            return await fn(door)
        finally:
            await door.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("fault", ["429", "500", "503", "hang", "drop", "malformed"])
def test_transient_fault_is_retried_to_success(srv: FakeOpenAIServer, fault: str) -> None:
    acc = Accountant()
    srv.faults.extend([fault, fault])
    response = with_door(config(srv), lambda d: d.chat(ask("hi"), stage="t"), acc)
    assert response.text.startswith("echo ")
    assert srv.requests == 3 and srv.faults_served[fault] == 2
    stats = acc.stage("t")
    assert stats.calls == 1 and stats.retries == 2 and stats.failures == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("429", "rate limited (429)"),
        ("503", "server error (503)"),
        ("hang", "no answer within 0.5s"),
        ("malformed", "malformed answer"),
        ("drop", "Server disconnected"),
    ],
)
def test_persistent_fault_raises_with_reason(
    srv: FakeOpenAIServer, fault: str, reason: str
) -> None:
    acc = Accountant()
    srv.faults.extend([fault] * 3)
    with pytest.raises(ModelError, match="gave up after 3 attempts") as err:
        with_door(config(srv, max_retries=2), lambda d: d.chat(ask("hi"), stage="t"), acc)
    assert reason in str(err.value)
    assert srv.requests == 3
    stats = acc.stage("t")
    assert stats.failures == 1 and stats.calls == 0
    assert [k for k in stats.failure_reasons if reason in k] != []


def test_retry_after_is_read_and_honoured(srv: FakeOpenAIServer) -> None:
    srv.retry_after = 0.3
    srv.faults.append("429")

    async def direct(door: ModelDoor) -> float:
        with pytest.raises(TransientModelError) as err:
            await door.model.complete(ask("x"))
        assert err.value.retry_after == pytest.approx(0.3)
        srv.faults.append("429")
        start = asyncio.get_running_loop().time()
        await door.chat(ask("y"))
        return asyncio.get_running_loop().time() - start

    # Without Retry-After the jittered backoff here is at most 1 ms; the header makes it 0.3 s.
    assert with_door(config(srv), direct) >= 0.3


@pytest.mark.parametrize(
    ("fault", "text", "server"),
    [
        ("401", f"API key from ${KEY_ENV}", "Incorrect API key provided."),
        ("404", "unknown model", "The model does not exist."),
        ("quota", "quota is used up (429)", "You exceeded your current quota"),
    ],
)
def test_permanent_errors_are_not_retried(
    srv: FakeOpenAIServer, fault: str, text: str, server: str
) -> None:
    srv.faults.append(fault)
    with pytest.raises(EndpointError) as err:  # no unit's fault: the run stops at once
        with_door(config(srv), lambda d: d.chat(ask("x")))
    assert not isinstance(err.value, TransientModelError)
    assert text in str(err.value) and server in str(err.value)  # lbi's words and the server's
    assert srv.requests == 1


def test_api_key_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    remote = OpenAIModelConfig(base_url="https://api.example.com/v1", api_key_env=KEY_ENV)
    with pytest.raises(ModelError, match=rf"\${KEY_ENV} is not set"):
        resolve_api_key(remote)
    with pytest.raises(ModelError, match=KEY_ENV):
        make_model("openai:gpt-4o", Config(models={"openai": remote}))  # type: ignore[arg-type]
    assert (
        resolve_api_key(OpenAIModelConfig(base_url="http://localhost:8080/v1", api_key_env=KEY_ENV))
        == "EMPTY"
    )
    monkeypatch.setenv(KEY_ENV, "sk-test-value")
    assert resolve_api_key(remote) == "sk-test-value"
    with pytest.raises(ModelError, match="needs a name"):
        OpenAIModel("", remote)


def test_tools_come_back_as_openai_dicts(srv: FakeOpenAIServer) -> None:
    srv.tool_calls = True
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        },
    }
    response = with_door(config(srv), lambda d: d.chat(ask("find it", tools=[tool])))
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert call["type"] == "function" and call["function"]["name"] == "lookup"
    assert set(json.loads(call["function"]["arguments"])) == {"q"}
    assert srv.bodies[0]["tools"] == [tool]


def test_request_body_maps_every_field(srv: FakeOpenAIServer) -> None:
    model = make_model("openai:m", config(srv))
    assert isinstance(model, OpenAIModel)
    schema = {"type": "object"}
    request = ask(
        "x",
        seed=7,
        stop=["\n"],
        json_schema=schema,
        grammar='root ::= "a"',
        temperature=0.3,
        sample=2,
    )
    body = model.body(request)
    assert body["model"] == "m" and body["seed"] == 7 and body["stop"] == ["\n"]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 512
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema},
    }
    assert "grammar" not in body and "sample" not in body
    model.record.grammar = True  # what `models.openai.server: llama.cpp` (or the probe) sets
    assert model.body(request)["grammar"] == 'root ::= "a"'
    asyncio.run(model.aclose())


def test_usage_and_text_are_parsed(srv: FakeOpenAIServer) -> None:
    response = with_door(config(srv), lambda d: d.chat(ask("count my tokens please")))
    assert response.prompt_tokens == len("count my tokens please") // 4 + 1
    assert response.completion_tokens > 0 and response.latency_s > 0 and not response.cached


def test_unreachable_endpoint_is_a_connection_failure() -> None:
    with FakeOpenAIServer() as gone:
        url = gone.base_url
    cfg = Config.model_validate(
        {
            "models": {
                "openai": {"base_url": url, "api_key_env": KEY_ENV, "transport": TRANSPORT["name"]}
            },
            "cache": {"enabled": False},
            "door": {"backoff_base_s": 0.001, "max_retries": 1, "timeout_s": 2},
        }
    )
    with pytest.raises(ModelError, match=r"connection to http://127\.0\.0\.1:\d+/v1 failed"):
        with_door(cfg, lambda d: d.chat(ask("x")))
