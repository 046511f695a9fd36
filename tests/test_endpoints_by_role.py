"""Issue 27 item 1: named endpoints, and which one serves each role. The agent on one fake
server; the task writer, the labeller, the judge and the embeddings on another; each call on
its own endpoint and on its own model's books."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config, ConfigError, config_from_dict
from lbi.models.accounting import paid_models
from lbi.models.registry import make_model
from lbi.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()
ACTIONS = ["list", "set a 1", "get a", "submit"]


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    with (
        FakeOpenAIServer(react_actions=ACTIONS, match_ids=True, array_items=3) as agent,
        FakeOpenAIServer(react_actions=ACTIONS, match_ids=True, array_items=3) as helpers,
    ):
        yield agent, helpers


def test_agent_on_one_endpoint_tasks_labels_judges_and_embeddings_on_another(
    servers: tuple[FakeOpenAIServer, FakeOpenAIServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, helpers = servers
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = tmp_path / "lbi.yaml"
    config.write_text(
        json.dumps(
            {
                "env": "toy",
                "model": "openai:fake",
                "run_root": str(tmp_path / "runs"),
                "models": {"openai": {"base_url": agent.base_url, "api_key_env": "NO_KEY_SET"}},
                "endpoints": {
                    "lab": {"base_url": helpers.base_url, "headers": {"X-Team": "judges"}}
                },
                "roles": {"tasks": "lab:fake", "labels": "lab:fake"},
                "synth": {"judges": ["lab:fake"], "max_chunks": 2},
                "embed": {"name": "lab:embed-small"},
            }
        )
    )
    done = runner.invoke(app, ["synth", "--config", str(config), "--run", "r"])
    assert done.exit_code == 0, done.output
    # the agent's server saw only act calls (free text); the other only structured calls
    assert agent.bodies and all("response_format" not in b for b in agent.bodies)
    assert helpers.bodies and all("response_format" in b for b in helpers.bodies)
    assert all(h.get("X-Team") == "judges" for h in helpers.headers)
    assert not any("X-Team" in h for h in agent.headers)
    kinds = {json.dumps(b["response_format"])[:200] for b in helpers.bodies}
    assert any("tasks" in k for k in kinds) and any("labels" in k for k in kinds)
    assert any("verdicts" in k for k in kinds)
    stats = runner.invoke(app, ["stats", "r", "--config", str(config)])
    assert stats.exit_code == 0, stats.output
    assert "spend by model" in stats.output
    lines = {line.split("│")[1].strip(): line for line in stats.output.splitlines() if "│" in line}
    assert "openai:fake" in lines and "lab:fake" in lines
    book = {name: int(lines[name].split("│")[2]) for name in ("openai:fake", "lab:fake")}
    assert book == {"openai:fake": len(agent.bodies), "lab:fake": len(helpers.bodies)}
    # retrieval's dense index for the run's examples was built on the helpers' endpoint
    index = runner.invoke(app, ["index", "build", "r", "--config", str(config)])
    assert index.exit_code == 0, index.output
    assert helpers.embedding_requests > 0 and agent.embedding_requests == 0


def test_endpoint_names_prices_and_keys() -> None:
    with pytest.raises(ConfigError, match="built-in model prefix"):
        config_from_dict({"endpoints": {"openai": {"base_url": "http://10.0.0.5:8000/v1"}}})
    cfg = config_from_dict(
        {
            "model": "lan:qwen",
            "endpoints": {
                "lan": {"base_url": "http://10.0.0.5:8000/v1", "free": True},
                "paid": {"base_url": "https://api.example.com/v1", "api_key_env": "EX_KEY"},
            },
            "synth": {"judges": ["paid:big"]},
        }
    )
    # a LAN server marked free needs neither a key nor a price; the paid one needs both
    assert paid_models(cfg) == ["paid:big"]
    model = make_model("lan:qwen", cfg)
    assert model.name == "lan:qwen"
    with pytest.raises(Exception, match="EX_KEY is not set"):
        make_model("paid:big", cfg)


def test_openai_base_url_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    assert Config().models.openai.base_url == "http://127.0.0.1:9999/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert Config().models.openai.base_url == "https://api.openai.com/v1"
