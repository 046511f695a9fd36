"""Prompts that fit the endpoint's context (issue 27, item 3): a synth and an eval run against
each provider profile of the fake server, run with a 2,048-token context that the default
batches do not fit (8 judged examples ask for 2,920 answer tokens alone, 6 labelled windows for
2,020), complete with no failure at all (`run.max_failures=0`): judge and label batches are
packed to the context, act prompts shrunk, and an overflow the count missed is sent again
smaller. Servers that state their context (vLLM, llama.cpp, Ollama) never see an oversized
request; OpenAI and Gemini state it only in their first refusal, and lbi keeps it from there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.run import RunContext
from lbi.testing.fake_context import server_tokens
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES
from lbi.types import Example, Failure, Verdict

runner = CliRunner()
KEY_ENV = "LBI_TEST_CONTEXT_KEY"
ACTIONS = ["list", "set a 1", "get a", "submit"]
CONTEXT = 2048
STATES_IT = {"vllm", "llamacpp", "ollama"}  # in /models or /api/show, before any call


def _args(root: Path, srv: FakeOpenAIServer, model: str) -> list[str]:
    sets = {
        "run_root": root,
        "models.openai.base_url": srv.base_url,
        "models.openai.api_key_env": KEY_ENV,
        "embed.name": "hash",
        "door.backoff_base_s": 0.001,
        "door.concurrency": 1,  # one call at a time: at most one refusal before lbi knows
        "run.max_failures": 0,  # any failed unit stops the run with exit 4
    }
    out = ["--env", "toy", "--model", f"openai:{model}", "--run", "r"]
    for key, value in sets.items():
        out += ["--set", f"{key}={value}"]
    return out


@pytest.mark.parametrize("name", ["openai-chat", "gemini", "vllm", "llamacpp", "ollama"])
def test_a_run_bigger_than_the_context_completes_with_prompts_fitted(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    profile = PROFILES[name]
    with FakeOpenAIServer(
        profile=profile, context=CONTEXT, react_actions=ACTIONS, match_ids=True, array_items=3
    ) as srv:
        args = _args(tmp_path, srv, profile.model)
        for command in (["synth"], ["eval", "--variants", "none,both"]):
            r = runner.invoke(app, [*command, *args])
            assert r.exit_code == 0, r.output
        bodies, overflows, truncated = list(srv.bodies), srv.overflows, srv.truncated

    ctx = RunContext("r", Config(run_root=str(tmp_path)), create=False)
    try:
        assert ctx.store.all(Failure) == []
        assert ctx.store.all(Verdict) and ctx.store.all(Example)
    finally:
        ctx.store.close()
    assert truncated == 0  # Ollama would have cut a prompt without a word
    assert overflows == (0 if name in STATES_IT else 1)
    sizes = [
        server_tokens(b) + int(b.get("max_tokens") or b.get("max_completion_tokens") or 0)
        for b in bodies
    ]
    assert sum(size > CONTEXT for size in sizes) == overflows
    # The batches were packed smaller than configured (8 examples per judge call).
    judged = [len(re.findall(r'<example-\w+ id="\d+">', str(b["messages"]))) for b in bodies]
    assert 0 < max(judged) < 8
