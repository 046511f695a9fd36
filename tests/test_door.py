"""The model door: cache, budget, accounting, concurrency, structured output, recorder, secrets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lbi
from lbi.config import Config
from lbi.models.accounting import Accountant
from lbi.models.base import BudgetExceeded, ChatRequest, ModelError
from lbi.models.cache import CallCache, cache_key, record_key
from lbi.models.door import ModelDoor, check_schema, extract_json, open_door
from lbi.testing.fake_openai import FakeOpenAIServer

KEY_ENV = "LBI_TEST_DOOR_KEY"


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def make_config(srv: FakeOpenAIServer, tmp_path: Path, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "run_root": str(tmp_path),
        "models": {"openai": {"base_url": srv.base_url, "api_key_env": KEY_ENV}},
        "door": {"backoff_base_s": 0.001, "backoff_max_s": 0.05, "timeout_s": 5.0},
    }
    for section, values in extra.items():
        data[section] = {**data.get(section, {}), **values}
    return Config.model_validate(data)


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def run_door(config: Config, fn: Any, **door_kw: Any) -> Any:
    async def go() -> Any:
        door = open_door("openai:fake", config, **door_kw)
        try:
            return await fn(door)
        finally:
            await door.aclose()

    return asyncio.run(go())


def test_warm_cache_rerun_makes_no_backend_calls(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)

    async def five(door: ModelDoor) -> list[str]:
        return [(await door.chat(ask(f"q{i}"), stage="s")).text for i in range(5)]

    first = run_door(cfg, five)
    assert srv.requests == 5
    acc = Accountant(cfg)
    second = run_door(cfg, five, accountant=acc)  # a fresh door and cache object: the file serves
    assert second == first
    assert srv.requests == 5
    assert acc.stage("s").cache_hits == 5 and acc.stage("s").calls == 0
    assert cfg.cache_path.is_file()


def test_samples_at_temperature_are_distinct_entries(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)

    async def calls(door: ModelDoor) -> None:
        await door.chat(ask("same", temperature=0.7, sample=0))
        await door.chat(ask("same", temperature=0.7, sample=1))
        await door.chat(ask("same", temperature=0.7, sample=1))  # hit
        await door.chat(ask("same", temperature=0.0, sample=0))
        await door.chat(ask("same", temperature=0.0, sample=3))  # greedy: sample index ignored

    run_door(cfg, calls)
    assert srv.requests == 3
    a, b = ask("x", temperature=0.5, sample=0), ask("x", temperature=0.5, sample=1)
    assert cache_key("openai", "m", a) != cache_key("openai", "m", b)
    assert cache_key("openai", "m", a) != cache_key("openai", "other", a)


def test_cache_survives_reopen_and_shares_between_connections(tmp_path: Path) -> None:
    from lbi.models.base import ChatResponse

    path = tmp_path / "c.sqlite"
    one, two = CallCache(path), CallCache(path)
    one.put("k", ChatResponse(text="hello", prompt_tokens=3, completion_tokens=1))
    got = two.get("k")
    assert got is not None and got.text == "hello" and got.cached and got.prompt_tokens == 3
    assert two.get("missing") is None
    one.close()
    two.close()
    with CallCache(path) as three:
        assert len(three) == 1 and "k" in three


def test_answers_put_in_one_loop_turn_are_written_together_on_the_next(tmp_path: Path) -> None:
    from lbi.models.base import ChatResponse

    path = tmp_path / "c.sqlite"
    cache, reader = CallCache(path), CallCache(path)  # the reader: another process's view

    async def go() -> None:
        for i in range(5):
            cache.put(f"k{i}", ChatResponse(text=str(i)))
        assert cache.get("k4") is not None  # this process sees an answer at once
        assert reader.get("k0") is None  # the file gets them on the next turn, in one commit
        await asyncio.sleep(0)
        got = [reader.get(f"k{i}") for i in range(5)]
        assert [g.text if g else None for g in got] == ["0", "1", "2", "3", "4"]
        cache.put("last", ChatResponse(text="z"))  # the loop ends before its turn comes

    asyncio.run(go())
    cache.close()  # close writes whatever is still pending
    hit = reader.get("last")
    assert hit is not None and hit.text == "z"
    reader.close()


_WRITER = """
import sys
from lbi.models.base import ChatResponse
from lbi.models.cache import CallCache
cache = CallCache(sys.argv[1])
tag, i = sys.argv[2], 0
print("ready", flush=True)
while True:
    cache.put(f"{tag}-{i}", ChatResponse(text="x" * 2000 + str(i), prompt_tokens=i))
    i += 1
"""


def test_cache_survives_two_writers_killed_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    src = str(Path(lbi.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag], stdout=subprocess.PIPE, env=env
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(0.5)
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    keys = [k for (k,) in conn.execute("SELECT key FROM calls")]
    conn.close()
    assert any(k.startswith("a-") for k in keys) and any(k.startswith("b-") for k in keys)
    with CallCache(path) as cache:
        for key in keys:
            got = cache.get(key)
            assert got is not None and got.text.endswith(key.split("-")[1])


def test_concurrency_limit_is_honoured(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=0.03) as srv:
        cfg = make_config(srv, tmp_path, door={"concurrency": 4}, cache={"enabled": False})

        async def many(door: ModelDoor) -> None:
            await asyncio.gather(*(door.chat(ask(f"c{i}")) for i in range(24)))

        run_door(cfg, many)
        assert srv.requests == 24
        assert 2 <= srv.max_in_flight <= 4


def test_budget_stops_before_spending_and_resume_keeps_counting(
    srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    cfg = make_config(
        srv,
        tmp_path,
        budget={"max_tokens": 20},
        cache={"enabled": False},
    )
    cfg.prices["openai:fake"] = cfg.prices.get("openai:fake") or _price(1.0, 2.0)
    acc = Accountant(cfg)

    async def until_stopped(door: ModelDoor) -> int:
        n = 0
        with pytest.raises(BudgetExceeded, match="token budget"):
            while n < 100:
                await door.chat(ask(f"b{n}"))
                n += 1
        return n

    n = run_door(cfg, until_stopped, accountant=acc)
    assert n == srv.requests  # the call that raised never reached the server
    total = acc.total
    assert total.tokens >= 20
    assert total.cost_usd == pytest.approx(
        (total.prompt_tokens * 1.0 + total.completion_tokens * 2.0) / 1e6
    )

    snap = json.loads(json.dumps(acc.snapshot()))  # what a run stores between restarts
    resumed = Accountant(cfg, prior=snap)
    with pytest.raises(BudgetExceeded):
        resumed.check_budget()
    bigger = make_config(
        srv, tmp_path, budget={"max_tokens": total.tokens + 15}, cache={"enabled": False}
    )
    resumed = Accountant(bigger, prior=snap["total"])
    before = srv.requests
    run_door(bigger, until_stopped, accountant=resumed)
    assert srv.requests > before
    assert resumed.total.tokens >= total.tokens + 15
    assert resumed.total.calls == srv.requests

    restored = Accountant.from_snapshot(json.loads(json.dumps(resumed.snapshot())), bigger)
    assert restored.snapshot() == resumed.snapshot()


def _price(prompt: float, completion: float) -> Any:
    from lbi.config import Price

    return Price(prompt=prompt, completion=completion)


def test_cache_hits_cost_nothing(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)
    cfg.prices["openai:fake"] = _price(5.0, 5.0)
    acc = Accountant(cfg)

    async def twice(door: ModelDoor) -> None:
        await door.chat(ask("p"), stage="a")
        await door.chat(ask("p"), stage="b")

    run_door(cfg, twice, accountant=acc)
    assert acc.stage("a").cost_usd > 0
    assert acc.stage("b").cost_usd == 0 and acc.stage("b").cache_hits == 1


def test_chat_json_repairs_garbage_then_accepts(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    srv.replies.extend(["Sure! Here you go: n equals three", 'Fixed:\n```json\n{"n": 3}\n```'])

    value = run_door(cfg, lambda d: d.chat_json(ask("count"), schema, stage="j"))
    assert value == {"n": 3}
    assert srv.requests == 2
    repair = srv.bodies[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Here you go: n equals three"}
    assert "not valid JSON" in repair[-1]["content"] and '"required":["n"]' in repair[-1]["content"]
    assert srv.bodies[0]["response_format"]["json_schema"]["schema"] == schema


def test_chat_json_gives_up_with_reason(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path, door={"json_repair_attempts": 1})
    acc = Accountant(cfg)
    srv.replies.extend(['{"n": "three"}', '{"m": 1}'])
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with pytest.raises(ModelError, match="missing the required field 'n'"):
        run_door(cfg, lambda d: d.chat_json(ask("count"), schema, stage="j"), accountant=acc)
    assert srv.requests == 2
    assert "$.n should be of type integer" in srv.bodies[1]["messages"][-1]["content"]
    assert acc.stage("j").failures == 1


def test_chat_json_runs_the_validator(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)
    srv.replies.extend(['{"n": -1}', '{"n": 4}'])

    def positive(value: Any) -> None:
        if value["n"] <= 0:
            raise ValueError("n must be positive")

    schema = {"type": "object", "required": ["n"]}
    value = run_door(cfg, lambda d: d.chat_json(ask("v"), schema, validate=positive))
    assert value == {"n": 4}
    assert "n must be positive" in srv.bodies[1]["messages"][-1]["content"]


def test_extract_json_handles_fences_prose_and_strings() -> None:
    assert extract_json('  {"a": 1} ') == {"a": 1}
    assert extract_json("```json\n[1, 2]\n```") == [1, 2]
    assert extract_json('The answer is {"s": "a } brace", "t": [1]} and more {"x": 2}') == {
        "s": "a } brace",
        "t": [1],
    }
    assert extract_json('noise [oops {"ok": true}') == {"ok": True}
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json("no json here")
    with pytest.raises(ValueError, match="empty"):
        extract_json("   ")
    with pytest.raises(ValueError, match=r"\$\[1\] should be of type string"):
        check_schema(["a", 2], {"type": "array", "items": {"type": "string"}})
    with pytest.raises(ValueError, match="should be of type integer"):
        check_schema(True, {"type": "integer"})


def test_recorder_writes_replayable_lines(srv: FakeOpenAIServer, tmp_path: Path) -> None:
    cfg = make_config(srv, tmp_path)
    path = tmp_path / "rec.jsonl"
    request = ask("record me", kind="act")

    async def calls(door: ModelDoor) -> str:
        first = await door.chat(request)
        await door.chat(request)  # a cache hit is not written twice
        return first.text

    text = run_door(cfg, calls, record_path=path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["key"] == record_key(request)
    assert lines[0]["kind"] == "act" and lines[0]["messages"] == request.messages
    assert lines[0]["response"]["text"] == text


def test_planted_api_key_leaks_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    planted = f"sk-PLANTED-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, planted)
    with FakeOpenAIServer(api_key=planted) as srv:
        cfg = make_config(srv, tmp_path)
        acc = Accountant(cfg)
        rec = tmp_path / "rec.jsonl"
        srv.faults.extend(["500", "malformed"])

        async def calls(door: ModelDoor) -> None:
            await door.chat(ask("hello"))
            await door.chat_json(ask("json"), {"type": "object"})

        run_door(cfg, calls, accountant=acc, record_path=rec)
        assert srv.requests == 4
    with FakeOpenAIServer(api_key="sk-the-right-one") as srv:  # answers 401 to the planted key
        cfg = make_config(srv, tmp_path)
        with pytest.raises(ModelError) as err:
            run_door(cfg, lambda d: d.chat(ask("rejected")), accountant=acc)
        assert srv.requests == 1  # a rejected key is not retried
    message = str(err.value)
    assert KEY_ENV in message and planted not in message and "sk-PLANTED" not in repr(err.value)
    assert err.value.__cause__ is None and err.value.__context__ is None
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("llm.sqlite") for p in files)
    for p in files:
        assert planted.encode() not in p.read_bytes(), p
    assert planted not in json.dumps(acc.snapshot())


def test_a_backend_that_cannot_be_stopped_is_waited_for_not_timed_out() -> None:
    from lbi.models.base import Capabilities, ChatResponse

    class Slow:  # like the in-process llama.cpp backend: its calls run to the end regardless
        name = "slow:x"
        capabilities = Capabilities()
        timeout_s = None
        calls = 0

        async def complete(self, request: ChatRequest) -> ChatResponse:
            Slow.calls += 1
            await asyncio.sleep(0.3)
            return ChatResponse(text="done")

        async def aclose(self) -> None:
            return None

    door_cfg = {"timeout_s": 0.05, "backoff_base_s": 0.001, "backoff_max_s": 0.01}
    cfg = Config.model_validate({"cache": {"enabled": False}, "door": door_cfg})

    acc = Accountant(cfg)

    async def go(model: Any) -> str:
        door = ModelDoor(model, cfg, None, acc)
        return (await door.chat(ask("x"), stage="s")).text

    assert asyncio.run(go(Slow())) == "done" and Slow.calls == 1
    Slow.timeout_s = 0.05  # type: ignore[assignment]  # with a limit, the door times it out
    with pytest.raises(ModelError, match=r"no answer within 0\.05s"):
        asyncio.run(go(Slow()))
    # every timed-out attempt is on the books, with the time it took
    attempts = cfg.door.max_retries + 1
    assert acc.stage("s").timeouts == attempts and acc.stage("s").latency_s >= 0.05 * attempts


def test_a_rewritten_model_file_is_asked_again_not_served_the_old_answers(tmp_path: Path) -> None:
    from lbi.models.base import Capabilities, ChatResponse

    class Served:  # a backend over weights at a path the user named (local:PATH, hf:PATH)
        name = "local:runs/r/train/model.gguf"
        capabilities = Capabilities()
        weights_version = "v1"
        calls = 0

        async def complete(self, request: ChatRequest) -> ChatResponse:
            Served.calls += 1
            return ChatResponse(text=f"answer of {self.weights_version}")

        async def aclose(self) -> None:
            return None

    cfg = Config()

    async def go(version: str) -> str:
        model = Served()
        model.weights_version = version
        with CallCache(tmp_path / "llm.sqlite") as cache:
            door = ModelDoor(model, cfg, cache, Accountant(cfg))
            return (await door.chat(ask("same prompt"))).text

    assert asyncio.run(go("v1")) == "answer of v1" and Served.calls == 1
    assert asyncio.run(go("v2")) == "answer of v2" and Served.calls == 2  # retrained in place
    assert asyncio.run(go("v1")) == "answer of v1" and Served.calls == 2  # the old one: a hit


def test_scripted_answers_that_depend_on_meta_are_cached_per_meta(tmp_path: Path) -> None:
    """tau2 telecom tasks share their first prompt; the scripted policy replays each task's own
    reference from `meta`. With meta outside the cache key, task 2 got task 1's actions (issue
    28: tau2-telecom-quick scored 1/3 with the cache, 3/3 without)."""
    config = Config.model_validate({"run_root": str(tmp_path)})

    async def go() -> list[str]:
        door = open_door("scripted", config)
        try:
            answers = []
            for reference in (["submit A"], ["submit B"], ["submit A"]):
                request = ask("same prompt", kind="act", meta={"reference": reference, "step": 0})
                answers.append((await door.chat(request, stage="eval")).text)
            return answers
        finally:
            await door.aclose()

    first, second, third = asyncio.run(go())
    assert "submit A" in first and "submit B" in second and third == first


def test_meta_enters_the_key_only_for_backends_that_read_it() -> None:
    a = ask("x", meta={"reference": ["a"]})
    b = ask("x", meta={"reference": ["b"]})
    assert cache_key("openai", "m", a) == cache_key("openai", "m", b)
    assert cache_key("scripted", "", a, with_meta=True) != cache_key(
        "scripted", "", b, with_meta=True
    )
    assert record_key(a) == record_key(b)  # recordings stay backend-neutral


def test_another_server_or_reasoning_effort_misses_the_cache(tmp_path: Path) -> None:
    from lbi.config import OpenAIModelConfig
    from lbi.models.openai_backend import endpoint_identity

    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        cache = {"path": str(tmp_path / "shared.sqlite")}  # one cache for every door here

        def answer(srv: FakeOpenAIServer, **openai: Any) -> str:
            cfg = make_config(srv, tmp_path, cache=cache)
            cfg.models.openai = cfg.models.openai.model_copy(update=openai)
            return str(run_door(cfg, lambda door: door.chat(ask("same question"))).text)

        answer(a)
        answer(b)  # the same model name on another server: asked, not served A's answer
        answer(a)  # A's answer is still A's
        assert (a.requests, b.requests) == (1, 1)
        answer(a, reasoning_effort="low")  # another effort, another answer
        answer(a, reasoning_effort="high")
        answer(a, reasoning_effort="low")
        assert a.requests == 3
    # OpenAI's own URL at the default effort keys as before: caches made earlier still answer.
    assert endpoint_identity(OpenAIModelConfig()) == {}


def test_other_served_weights_under_the_same_name_and_url_miss_the_cache(tmp_path: Path) -> None:
    """vLLM lists the weights' path (`root`), llama.cpp the GGUF's path and size: a server
    restarted on retrained weights, on the same port under the same name, is asked again."""
    cache = {"path": str(tmp_path / "shared.sqlite")}
    port = 0
    asked = []
    for root in ("/ckpt/step-100", "/ckpt/step-100", "/ckpt/step-200", "/ckpt/step-100"):
        with FakeOpenAIServer(port=port, served={"root": root, "created": len(asked)}) as srv:
            port = srv.port
            cfg = make_config(srv, tmp_path, cache=cache)
            run_door(cfg, lambda door: door.chat(ask("same question")))
            asked.append(srv.requests)
    # asked, served from the cache, asked (new weights), served (the first weights' answer);
    # `created` (a request's time on vLLM and llama.cpp) changes nothing
    assert asked == [1, 0, 1, 0]
