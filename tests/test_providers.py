"""Provider conformance: `lbi models probe`, `lbi synth` and `lbi eval --variants none,both` on
`sql` against every provider profile of the fake server and against a real llama.cpp HTTP
server (xllamacpp), all through `--model openai:...`. The probe's "lbi will use" line must
name the mode the backend then uses, as seen in the request bodies of the run."""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.run import RunContext
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES
from lbi.types import Failure

runner = CliRunner()
KEY_ENV = "LBI_TEST_PROVIDER_KEY"
ACTIONS = ["SELECT count(*) FROM battle", "submit"]


@pytest.fixture(scope="module")
def spider(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spider")  # converted once, shared by the runs here


def _args(run_root: Path, base_url: str, model: str, spider: Path) -> list[str]:
    sets = {
        "run_root": str(run_root),
        "embed.name": "hash",
        "models.openai.base_url": base_url,
        "models.openai.api_key_env": KEY_ENV,
        "synth.max_chunks": 1,
        "synth.tasks_per_chunk": 1,
        "synth.max_steps": 2,
        "eval.max_steps": 2,
        "door.backoff_base_s": 0.001,
        "env_options.sql.data_dir": str(spider),
    }
    out = ["--env", "sql:battle_death", "--model", f"openai:{model}", "--run", "r"]
    for key, value in sets.items():
        out += ["--set", f"{key}={value}"]
    return out


def _mode_of(body: dict[str, Any]) -> str:
    fmt = (body.get("response_format") or {}).get("type")
    if fmt == "json_schema":
        return "native json_schema"
    if fmt == "json_object":
        return "json_object + schema in prompt + repair"
    return "prompt+repair"


def _structured(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests that asked for JSON: a response_format, or the schema in the prompt."""
    return [b for b in bodies if "response_format" in b or "matching this JSON schema" in str(b)]


def _run_all(args: list[str], model: str, root: Path, srv: FakeOpenAIServer | None) -> str:
    """Probe, synth, eval; returns the probe's 'lbi will use' JSON mode."""
    sets = [x for k, v in itertools.pairwise(args) if k == "--set" for x in (k, v)]
    probe = runner.invoke(app, ["models", "probe", f"openai:{model}", *sets])
    assert probe.exit_code == 0, probe.output
    used = re.search(r"lbi will use: (.+?); ", probe.output)
    assert used, probe.output
    if srv is not None:
        srv.reset_stats()  # from here on: the run's own requests
    synth = runner.invoke(app, ["synth", *args])
    assert synth.exit_code == 0, synth.output
    ev = runner.invoke(app, ["eval", *args, "--variants", "none,both"])
    assert ev.exit_code == 0, ev.output
    report = json.loads((root / "r" / "report" / "report.json").read_text())
    assert {"none", "both"} <= set(json.dumps(report).split('"'))
    return used.group(1)


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_synth_and_eval_run_against_each_provider(name: str, tmp_path: Path, spider: Path) -> None:
    profile = PROFILES[name]
    with FakeOpenAIServer(profile=profile, react_actions=ACTIONS, match_ids=True) as srv:
        used = _run_all(
            _args(tmp_path, srv.base_url, profile.model, spider), profile.model, tmp_path, srv
        )
        bodies = list(srv.bodies)
    structured = _structured(bodies)
    assert structured, "the run made structured calls"
    # What the probe said is what the run did, on every structured call after the probe.
    assert {_mode_of(b) for b in structured} == {used}
    for field in profile.refuses:  # refused once (learnt by the probe), never sent again
        assert not any(field in b for b in bodies), field
    if name == "openai-reasoning":
        assert all("max_completion_tokens" in b and "temperature" not in b for b in bodies)
    if not profile.json_schema:
        assert used != "native json_schema"  # stepped down, and the run still succeeded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    xllamacpp = pytest.importorskip("xllamacpp")
    from lbi.models.assets import smollm2_gguf_path

    params = xllamacpp.CommonParams()
    params.model.path = str(smollm2_gguf_path())
    params.hostnames = ["127.0.0.1"]
    params.port = _free_port()
    params.n_ctx = 2048  # smaller than the default batches: prompts must be fitted to it
    params.cpuparams.n_threads = 1
    server = xllamacpp.Server(params)
    try:
        yield f"http://127.0.0.1:{params.port}/v1"
    finally:
        del server


def test_synth_and_eval_run_against_a_real_llama_cpp_server(
    llama_server: str, tmp_path: Path, spider: Path
) -> None:
    args = _args(tmp_path, llama_server, "smollm2", spider)
    # Small limits keep SmolLM2 on one loaded core to a few seconds a call; a cut JSON answer
    # costs its unit of work (recorded as a failure), not the run.
    limits = {"act": 40, "query": 16, "tasks": 64, "backward": 64, "judge": 96}
    args += ["--set", "models.openai.server=llama.cpp", "--set", "synth.max_steps=1"]
    args += ["--set", "eval.max_steps=1", "--set", "models.max_tokens.length_retry_factor=1"]
    args += ["--set", "retrieval.token_budget=300", "--env", "sql:cre_Doc_Template_Mgt"]
    for kind, n in limits.items():
        args += ["--set", f"models.max_tokens.{kind}={n}"]
    used = _run_all(args, "smollm2", tmp_path, None)
    assert used == "native json_schema"  # llama.cpp's server honours response_format
    record = json.loads((tmp_path / ".cache" / "endpoints.json").read_text())
    (entry,) = record.values()
    assert entry["json_mode"] == "json_schema" and entry["grammar"] is True
    assert entry["source"] == "probe"
    # GET /models lists the GGUF by its path, meta.n_ctx is the server's -c: prompts fit it,
    # and no unit failed for a context overflow.
    assert entry["context_length"] == 2048
    ctx = RunContext("r", Config(run_root=str(tmp_path)), create=False)
    try:
        failures = ctx.store.all(Failure)
    finally:
        ctx.store.close()
    assert not [f for f in failures if f.error == "context overflow"], failures
