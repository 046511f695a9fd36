"""`probe` tells what an endpoint really honours, against fake servers that do and do not."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.models.probe import format_report, probe
from lbi.testing.fake_openai import FakeOpenAIServer

KEY_ENV = "LBI_TEST_PROBE_KEY"


def config(base_url: str, tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "run_root": str(tmp_path),
            "models": {"openai": {"base_url": base_url, "api_key_env": KEY_ENV}},
            "door": {"backoff_base_s": 0.001, "timeout_s": 2.0},
        }
    )


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_capable_endpoint_gets_native_modes(tmp_path: Path) -> None:
    with FakeOpenAIServer(tool_calls=True) as srv:
        report = asyncio.run(probe("openai:fake", config(srv.base_url, tmp_path)))
        assert srv.requests == 5  # ping, schema, tools, two-city tools, grammar
    assert report.answers and report.latency_s is not None
    assert report.json_schema and report.tools
    assert report.json_mode == "native json_schema" and report.tools_mode == "native tools"
    assert "get_weather" in report.tools_detail
    text = format_report(report)
    assert "lbi will use: native json_schema; native tools" in text
    # the probe never touches the call cache; it leaves its record next to it
    assert not (tmp_path / ".cache" / "llm.sqlite").exists()
    assert (tmp_path / ".cache" / "endpoints.json").is_file()


def test_endpoint_ignoring_schema_and_tools_gets_fallbacks(tmp_path: Path) -> None:
    with FakeOpenAIServer(tool_calls=False, json_schema=False) as srv:
        report = asyncio.run(probe("openai:fake", config(srv.base_url, tmp_path)))
    assert report.answers
    assert not report.json_schema and "not JSON" in report.json_detail
    assert not report.tools and "no tool call" in report.tools_detail
    assert report.json_mode == "prompt+repair" and report.tools_mode == "text tool format"
    assert "json_schema:  no" in format_report(report)


def test_unreachable_endpoint_reports_why(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    cfg = config(f"http://127.0.0.1:{port}/v1", tmp_path)
    cfg.door.max_retries = 0
    report = asyncio.run(probe("openai:fake", cfg))
    assert not report.answers
    assert f"connection to http://127.0.0.1:{port}/v1 failed" in report.error
    assert format_report(report).startswith("openai:fake: no answer")


def test_bad_spec_is_reported_not_raised(tmp_path: Path) -> None:
    report = asyncio.run(probe("nosuchbackend:x", config("http://127.0.0.1:1/v1", tmp_path)))
    assert not report.answers and "unknown model" in report.error


# Ollama states nothing in /models: its num_ctx comes from /api/show (8192 in the profile).
@pytest.mark.parametrize(
    ("name", "context"), [("vllm", 32768), ("llamacpp", 4096), ("ollama", 8192)]
)
def test_the_stated_context_reaches_the_model_and_sizes_judge_batches(
    name: str, context: int, tmp_path: Path
) -> None:
    from lbi.models.registry import make_model
    from lbi.pipeline.filter import pack
    from lbi.testing.providers import PROFILES
    from lbi.tokens import counter_for
    from lbi.types import Example, Step

    profile = PROFILES[name]
    with FakeOpenAIServer(profile=profile) as srv:
        cfg = config(srv.base_url, tmp_path)
        report = asyncio.run(probe(f"openai:{profile.model}", cfg))
        model = make_model(f"openai:{profile.model}", cfg)  # a later run reads the record
    assert report.context_length == context and f"context:      {context}" in format_report(report)
    assert model.capabilities.context_length == context
    steps = [
        Step(index=i, observation="x " * 4000, action="noop()", next_observation="done")
        for i in range(4)
    ]  # each observation is cut to 800 characters when rendered: about 900 tokens an example
    exs = [
        Example(
            env="toy",
            instruction=f"task {n}",
            style="task",
            trajectory_id=f"t{n}",
            task_id="x",
            i=0,
            j=3,
            policy="agent",
            steps=steps,
        )
        for n in range(8)
    ]
    groups, rejected = pack(exs, 8, context, counter_for(model), "j")
    assert not rejected and [e for g in groups for e in g] == exs
    # Eight such examples and their answers' reserve fit 32k tokens, not 4k.
    if context > 20000:
        assert len(groups) == 1
    else:
        assert len(groups) > 1


def test_an_ollama_model_without_num_ctx_gets_ollamas_default_context(tmp_path: Path) -> None:
    """Ollama cuts a longer prompt silently: without a num_ctx in the Modelfile, lbi sizes
    prompts for its default of 4,096 tokens (the server's OLLAMA_CONTEXT_LENGTH is not visible)."""
    from dataclasses import replace

    from lbi.models.served import OLLAMA_DEFAULT_CONTEXT
    from lbi.testing.providers import PROFILES

    plain = replace(PROFILES["ollama"], ollama_show={"parameters": "", "model_info": {}})
    with FakeOpenAIServer(profile=plain) as srv:
        report = asyncio.run(probe(f"openai:{plain.model}", config(srv.base_url, tmp_path)))
    assert report.context_length == OLLAMA_DEFAULT_CONTEXT == 4096
