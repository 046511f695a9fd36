"""What a real endpoint brings: refused parameters, no json_schema, several tool calls, answers
cut at the token limit, prices, transient judge failures, run identity, and the evaluation's
integrity (benchmark identity in synthesized data, non-benchmark suites)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbi.agents.react import EpisodeSettings, run_episode
from lbi.cli import app
from lbi.config import Config, Price
from lbi.envs.base import ActionSpace, register_env
from lbi.envs.tools.actions import tool_call_from_openai
from lbi.envs.toy import ToyEnv
from lbi.eval.contamination import ContaminationError, check_contamination
from lbi.models.base import BudgetExceeded, ChatRequest
from lbi.models.door import open_door
from lbi.models.endpoints import EndpointStore
from lbi.run import default_run_name
from lbi.testing.fake_openai import FakeOpenAIServer
from lbi.testing.providers import PROFILES, Profile
from lbi.types import Failure, Task, Verdict

runner = CliRunner()
KEY_ENV = "LBI_TEST_REAL_KEY"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def config(srv: FakeOpenAIServer, tmp_path: Path, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "run_root": str(tmp_path),
        "models": {"openai": {"base_url": srv.base_url, "api_key_env": KEY_ENV}},
        "door": {"backoff_base_s": 0.001, "max_retries": 1, "timeout_s": 5},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return Config.model_validate(data)


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


# -- reasoning models, JSON step-down ------------------------------------------------------


def test_reasoning_model_refusals_are_learnt_once_and_reasoning_counted(tmp_path: Path) -> None:
    with FakeOpenAIServer(profile=PROFILES["openai-reasoning"]) as srv:
        cfg = config(srv, tmp_path, models={"openai": {"reasoning_effort": "low"}})
        cfg.models.openai.base_url, cfg.models.openai.api_key_env = srv.base_url, KEY_ENV

        async def go() -> Any:
            # a deployment name lbi cannot tell is a reasoning model: learnt from the 400s
            async with open_door("openai:my-deployment", cfg) as door:
                return [await door.chat(ask(f"hi {i}", max_tokens=200)) for i in range(2)]

        first, _ = asyncio.run(go())
        bodies = list(srv.bodies)
    assert len(bodies) == 4  # two refusals, then every call goes through first time
    assert "max_completion_tokens" in bodies[-1] and "temperature" not in bodies[-1]
    assert bodies[-1]["reasoning_effort"] == "low"
    assert first.reasoning_tokens == 64 and first.completion_tokens > 64
    stored = EndpointStore(tmp_path / ".cache").get(srv.base_url, "my-deployment")
    assert stored is not None and stored.refused == ["max_tokens", "temperature"]
    assert stored.source == "learnt"


def test_refused_json_schema_steps_down_to_json_object_then_prompt(tmp_path: Path) -> None:
    refusing = Profile(
        name="no-schema",
        model="m",
        refuses={"response_format": "response_format json_schema is not supported"},
        json_schema=False,
        json_object=False,
    )
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with FakeOpenAIServer(profile=refusing) as srv:
        cfg = config(srv, tmp_path)

        async def go() -> Any:
            async with open_door("openai:m", cfg) as door:
                return await door.chat_json(ask("a number please"), schema), door.capabilities

        value, caps = asyncio.run(go())
        bodies = list(srv.bodies)
    assert isinstance(value["n"], int)
    types = [(b.get("response_format") or {}).get("type") for b in bodies]
    assert types == ["json_schema", "json_object", None]
    assert "matching this JSON schema" in bodies[-1]["messages"][-1]["content"]
    assert caps.json_mode == "prompt"


# -- act steps: several tool calls, answers cut at the limit -------------------------------

_TOOLS = [
    {"type": "function", "function": {"name": n, "description": d, "parameters": p}}
    for n, d, p in [
        ("put", "Set a key.", {"type": "object", "properties": {"k": {"type": "string"}}}),
        ("done", "Finish.", {"type": "object", "properties": {}}),
    ]
]


class ToolToy(ToyEnv):
    """The toy store driven by tool calls: `put` sets a key, `done` ends the episode."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def action_space(self) -> ActionSpace:
        return ActionSpace(description="Keys and values.", tools=_TOOLS, examples=["{}"])

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.actions.append(action)
        call = json.loads(action)
        if call["name"] == "done":
            return "over", 1.0, True, False, {}
        self.state[call["arguments"]["k"]] = "1"
        return f"set {call['arguments']['k']}", 0.0, False, False, {}


def _episode(srv: FakeOpenAIServer, cfg: Config, env: Any, **settings: Any) -> Any:
    task = Task(env="toy", instruction="Set a and b.", origin="benchmark")

    async def go() -> Any:
        async with open_door("openai:gpt-4o-mini", cfg) as door:
            return await run_episode(door, env, task, EpisodeSettings(**settings))

    return asyncio.run(go())


def test_two_tool_calls_in_one_answer_run_in_order_and_the_prompt_describes_tools(
    tmp_path: Path,
) -> None:
    with FakeOpenAIServer(profile=PROFILES["openai-chat"]) as srv:
        srv.tool_replies.extend(
            [[("put", {"k": "a"}), ("put", {"k": "b"})], [("done", {}), ("put", {"k": "c"})]]
        )
        env = ToolToy()
        traj = _episode(srv, config(srv, tmp_path), env, max_steps=4)
        system = srv.bodies[0]["messages"][0]["content"]
        second = srv.bodies[1]["messages"]
    assert [json.loads(a)["arguments"].get("k") for a in env.actions] == ["a", "b", None]
    assert [s.action for s in traj.steps][:2] == [
        tool_call_from_openai({"function": {"name": "put", "arguments": '{"k": "a"}'}}),
        tool_call_from_openai({"function": {"name": "put", "arguments": '{"k": "b"}'}}),
    ]
    assert traj.success and len(traj.steps) == 4
    # after `done` ended the episode, the call that followed it is answered with a tool error
    assert traj.steps[-1].error and "episode ended" in traj.steps[-1].next_observation
    assert "REASON:" not in system and "function-calling" in system and "put" in system
    # the first answer's two calls went back as one assistant turn and two tool results
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    ids = [c["id"] for c in second[2]["tool_calls"]]
    assert [m["tool_call_id"] for m in second[3:]] == ids
    assert [m["content"] for m in second[3:]] == ["set a", "set b"]


def test_an_act_answer_cut_at_the_token_limit_is_not_executed(tmp_path: Path) -> None:
    long_sql = "SELECT " + ", ".join(f"col{i}" for i in range(200)) + " FROM t"
    with FakeOpenAIServer(profile=PROFILES["openai-chat"]) as srv:
        srv.replies.extend([f"REASON: all columns.\nACTION: {long_sql}"] * 2)
        cfg = config(srv, tmp_path, models={"max_tokens": {"act": 20}})
        env = ToyEnv()
        stepped: list[str] = []
        env.step = lambda a: stepped.append(a) or ("x", 0.0, False, False, {})  # type: ignore[method-assign]
        traj = _episode(srv, cfg, env, max_steps=1)
        limits = [b["max_tokens"] for b in srv.bodies]
    assert limits == [20, 40]  # cut, asked again with twice the limit, cut again
    assert stepped == []  # the half-written statement never ran
    step = traj.steps[0]
    assert step.error and "cut at the token limit" in step.next_observation


# -- money ---------------------------------------------------------------------------------


def test_paid_model_without_price_refuses_to_start(tmp_path: Path) -> None:
    base = ["--env", "toy", "--model", "openai:gpt-4o", "--set", f"run_root={tmp_path}"]
    base += ["--set", "models.openai.base_url=https://api.example.invalid/v1"]
    r = runner.invoke(app, ["synth", *base])
    assert r.exit_code == 2
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert "prices:" in " ".join(lines) and "openai:gpt-4o" in r.output
    assert not list(tmp_path.iterdir())  # nothing was started
    priced = runner.invoke(app, ["config", "show", *base[4:]])  # not a run: no check
    assert priced.exit_code == 0


def test_local_endpoints_are_free_and_allow_unpriced_lifts_the_check() -> None:
    from lbi.models.accounting import check_prices
    from lbi.models.base import ModelError

    local = {"model": "openai:m", "models": {"openai": {"base_url": "http://127.0.0.1:8/v1"}}}
    check_prices(Config.model_validate(local))
    remote = {"model": "openai:m", "models": {"openai": {"base_url": "https://api.openai.com/v1"}}}
    with pytest.raises(ModelError, match="prices:"):
        check_prices(Config.model_validate(remote))
    check_prices(Config.model_validate({**remote, "budget": {"allow_unpriced": True}}))
    check_prices(Config.model_validate({**remote, "prices": {"openai:m": {"prompt": 1.0}}}))


# -- transient failures, run identity -------------------------------------------------------


def test_transient_failures_are_asked_again_on_rerun_not_kept(tmp_path: Path) -> None:
    with FakeOpenAIServer(
        profile=PROFILES["openai-chat"], react_actions=["set a 1", "submit"], match_ids=True
    ) as srv:
        base = ["--env", "toy", "--model", "openai:gpt-4o-mini", "--run", "j"]
        for key, value in {
            "run_root": tmp_path,
            "models.openai.base_url": srv.base_url,
            "models.openai.api_key_env": KEY_ENV,
            "embed.name": "hash",
            "door.max_retries": 0,
            "door.backoff_base_s": 0.001,
            "synth.max_chunks": 1,
            "synth.max_steps": 2,
        }.items():
            base += ["--set", f"{key}={value}"]
        from lbi.run import RunContext

        def count(kind: type) -> int:
            ctx = RunContext("j", Config(run_root=str(tmp_path)), create=False)
            try:
                return int(ctx.store.count(kind))
            finally:
                ctx.store.close()

        srv.fault_ratio = {"500": 1.0}  # the task proposal fails (a transient server error)
        r = runner.invoke(app, ["tasks", *base])
        # Every unit failed: past run.max_failures, so the command says so and exits 4.
        assert r.exit_code == 4, r.output
        assert "1 of 1 doc chunks failed" in r.output and "server error (500)" in r.output
        assert count(Task) == 0 and count(Failure) == 1
        srv.fault_ratio = {}
        assert runner.invoke(app, ["tasks", *base]).exit_code == 0
        assert count(Task) > 0  # the chunk was not marked done: asked again
        assert count(Failure) == 0  # and its failure is gone
        for stage in ("rollout", "backward"):
            assert runner.invoke(app, [stage, *base]).exit_code == 0
        srv.fault_ratio = {"500": 1.0}  # every judge call fails (a transient server error)
        r = runner.invoke(app, ["filter", *base])
        assert r.exit_code == 4, r.output
        assert count(Verdict) == 0  # no rejection was stored for a failure that was not theirs
        srv.fault_ratio = {}
        assert runner.invoke(app, ["filter", *base]).exit_code == 0
        assert count(Verdict) > 0


def test_transport_settings_do_not_change_the_run_name() -> None:
    cfg = Config(model="openai:gpt-4o")
    same = cfg.model_copy(deep=True)
    same.models.openai.timeout_s = 5
    same.models.openai.max_connections = 2
    same.models.openai.transport = "sdk"
    same.door.concurrency = 1
    assert default_run_name(same) == default_run_name(cfg)
    other = cfg.model_copy(deep=True)
    other.models.max_tokens.act = 1024  # changes answers: another run
    assert default_run_name(other) != default_run_name(cfg)


def test_changing_timeout_between_synth_and_eval_reuses_the_run(tmp_path: Path) -> None:
    base = ["--env", "toy", "--model", "scripted", "--set", f"run_root={tmp_path}"]
    base += ["--set", "embed.name=hash", "--set", "synth.max_chunks=1"]
    assert runner.invoke(app, ["synth", *base]).exit_code == 0
    r = runner.invoke(
        app, ["eval", *base, "--set", "models.openai.timeout_s=7", "--variants", "none"]
    )
    assert r.exit_code == 0, r.output
    runs = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1  # eval found synth's run


# -- evaluation integrity ---------------------------------------------------------------------


def test_contamination_sees_tau2_scenarios_and_gold_sql() -> None:
    bench = [
        Task(
            env="tau2.retail",
            instruction="Help the customer.",
            setup={"tau2_task_id": "7"},
            origin="benchmark",
            gold={"tau2_task_id": "7"},
        ),
        Task(
            env="sql",
            instruction="How many singers are there?",
            setup={"db": "concert"},
            origin="benchmark",
            gold={"sql": "SELECT count(*) FROM singer"},
        ),
    ]
    scenario = Task(
        env="tau2.retail", instruction="Change my order.", setup={"tau2_task_id": "7"},
        origin="explore",
    )  # fmt: skip
    gold = Task(env="sql", instruction="Count them.", setup={"db": "concert"}, origin="docs",
                gold={"sql": "select COUNT(*) from singer;"})  # fmt: skip
    same_db = Task(env="sql", instruction="List singers.", setup={"db": "concert"}, origin="docs")
    check_contamination(bench, [same_db])  # a shared database is not contamination
    for data in ([scenario], [gold]):
        with pytest.raises(ContaminationError, match=r"tau2_task_id=7|gold answer"):
            check_contamination(bench, data)


@register_env("synthsuite", "a toy whose suite returns a synthesized task (tests only)")
def _synth_suite(arg: str, cfg: Config) -> ToyEnv:
    env = ToyEnv()
    real = env.load_suite

    def load_suite(name: str) -> list[Task]:
        tasks = real(name)
        return [*tasks[:1], tasks[1].model_copy(update={"origin": "docs"})]

    env.load_suite = load_suite  # type: ignore[method-assign]
    return env


def test_eval_refuses_a_task_whose_origin_is_not_the_benchmark(tmp_path: Path) -> None:
    base = ["--env", "synthsuite", "--model", "scripted", "--set", f"run_root={tmp_path}"]
    r = runner.invoke(app, ["eval", *base, "--suite", "toy-5", "--variants", "none"])
    assert r.exit_code == 2
    assert "origin is 'docs', not 'benchmark'" in " ".join(r.output.split())


def test_exploration_starts_drop_benchmark_identity() -> None:
    from lbi.identity import training_setup

    assert training_setup({"tau2_task_id": "3", "db": "x"}) == {"db": "x"}


# -- tau2's simulated customer on the run's books ----------------------------------------------


def test_tau2_customer_counts_in_the_run_and_its_budget(tmp_path: Path) -> None:
    pytest.importorskip("tau2")
    from lbi.envs.tau2.env import Tau2Env
    from lbi.models.scripted import ScriptedModel
    from lbi.run import RunContext

    cfg = Config(run_root=str(tmp_path), model="scripted", env="tau2.retail")
    cfg.prices = {"scripted": Price(prompt=1000.0, completion=1000.0)}
    cfg.budget.max_cost_usd = 0.05
    ctx = RunContext("t", cfg)
    _ = ctx.accountant  # the run is open: doors opened elsewhere count here
    user = ScriptedModel(handlers={"user_sim": lambda r: "I want to exchange a keyboard."})
    env = Tau2Env("retail", cfg, user_model=user)
    task = env.load_suite("tau2-retail-quick")[0]
    try:
        env.reset(task, seed=0)
        spent = ctx.accountant.stage("user_sim")
        assert spent.calls == 1 and spent.cost_usd > 0
        with pytest.raises(BudgetExceeded):
            env.reset(task, seed=1)  # the first turn spent the cap
    finally:
        env.close()
        asyncio.run(ctx.aclose())
    r = runner.invoke(app, ["stats", "t", "--set", f"run_root={tmp_path}"])
    assert r.exit_code == 0 and "user_sim" in r.output


def test_embeddings_count_in_the_open_run(tmp_path: Path) -> None:
    from lbi.embed.base import make_embedder
    from lbi.run import RunContext

    with FakeOpenAIServer() as srv:
        cfg = config(srv, tmp_path, embed={"name": "openai:emb"})
        cfg.prices = {"openai:emb": Price(prompt=100.0)}
        ctx = RunContext("e", cfg)
        try:
            _ = ctx.accountant
            make_embedder("openai:emb", cfg).embed(["a query", "another text"])
            spent = ctx.accountant.stage("embed")
            assert spent.calls == 1 and spent.prompt_tokens > 0 and spent.cost_usd > 0
        finally:
            asyncio.run(ctx.aclose())


def test_concurrent_calls_refused_together_all_succeed(tmp_path: Path) -> None:
    with FakeOpenAIServer(profile=PROFILES["openai-reasoning"], latency=0.05) as srv:
        cfg = config(srv, tmp_path)

        async def go() -> Any:
            async with open_door("openai:alias", cfg) as door:
                return await asyncio.gather(*(door.chat(ask(f"q{i}")) for i in range(6)))

        answers = asyncio.run(go())
    assert len(answers) == 6 and all(a.text for a in answers)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"error": {"message": "x", "param": "max_tokens"}}', "max_tokens"),
        # Refused for its size, not for being sent: clamped (test_provider_errors), not dropped.
        ('{"error": {"message": "max_tokens is too large: 5. This model supports at most 4 '
         'completion tokens, whereas you provided 5.", "param": "max_tokens"}}', None),
        ('[{"error": {"code": 400, "message": "Unknown name \\"seed\\": Cannot find field."}}]', "seed"),
        ('{"object": "error", "message": "\\"auto\\" tool choice requires '
         '--enable-auto-tool-choice", "param": null, "code": 400}', "tools"),
        ('{"error": {"message": "llama3 does not support tools"}}', "tools"),
        ('{"error": {"message": "the model is overloaded"}}', None),
    ],
)  # fmt: skip
def test_refused_field_is_read_from_each_error_shape(text: str, field: str | None) -> None:
    from lbi.models.openai_request import refused_field

    body = {"model": "m", "messages": [], "max_tokens": 5, "seed": 1, "tools": [{}]}
    assert refused_field(400, text, body) == field


def test_settings_added_later_keep_earlier_runs_names_at_their_defaults() -> None:
    """A run started before a setting existed resumes under the same name: new settings stay
    out of the name at their defaults (the names below are those of earlier versions)."""
    assert default_run_name(Config()) == "sql-local-e61da6"
    assert default_run_name(Config(env="toy", model="scripted")) == "toy-scripted-b66bee"
