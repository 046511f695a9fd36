"""Each retrieval variant retrieves what it should, through the real agent loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lbi.agents.react import EpisodeSettings, StepContext, run_episode
from lbi.agents.retrieval import VariantRetriever, fill_budget
from lbi.config import Config, RetrievalConfig
from lbi.embed.base import make_embedder
from lbi.envs.toy import ToyEnv
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest
from lbi.models.door import ModelDoor
from lbi.models.scripted import ScriptedModel
from lbi.retrieval.examples import build_doc_index, build_example_index, build_trajectory_index
from lbi.tokens import estimate_tokens
from lbi.types import Doc, Example, Step, Trajectory

FILLER = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta", "iota kappa", "lambda mu"]


def _ex(instruction: str, observation: str) -> Example:
    action = f"get {instruction.split()[-1]}"  # distinct per example, so actions don't link them
    step = Step(index=0, observation=observation, action=action, next_observation="done")
    return Example(
        env="toy",
        instruction=instruction,
        style="task",
        trajectory_id=instruction,
        task_id="t",
        i=0,
        j=0,
        policy="all",
        steps=[step],
    )


def _door(query: str = "nothing in particular") -> ModelDoor:
    model = ScriptedModel(handlers={"query": lambda req: query})
    return ModelDoor(model, Config(), None, Accountant(Config()))


def _retrieve(
    variant: str, index, ctx: StepContext, door: ModelDoor, m: int = 1
) -> VariantRetriever:
    r = VariantRetriever(variant, index, RetrievalConfig(m1=m, m2=m, token_budget=10_000))
    asyncio.run(r.retrieve(ctx, door, EpisodeSettings()))
    return r


@pytest.fixture(scope="module")
def world():
    cfg = Config()
    emb = make_embedder("hash", cfg)
    planted = {
        "obs": _ex("water the plants", "zebra zebra table quokka"),
        "ins": _ex("calibrate the flux capacitor", "plain listing"),
        "query": _ex("rotate the encryption keys", "another listing"),
    }
    fillers = [_ex(f"do {w}", f"{w} rows") for w in FILLER]
    index = build_example_index([*planted.values(), *fillers], emb, cfg)
    return cfg, emb, planted, index


def test_planted_example_is_rank_one_for_its_own_observation(world) -> None:
    _, _, planted, index = world
    assert index.search_lexical("zebra zebra table quokka", 5)[0][0] == planted["obs"].id


@pytest.mark.parametrize("variant", ["observation", "instruction", "model"])
def test_only_that_variant_finds_the_planted_item(world, variant: str) -> None:
    _, _, planted, index = world
    ctx = StepContext(
        env="toy",
        instruction="calibrate the flux capacitor",
        history=[],
        observation="zebra zebra table quokka",
        step=0,
    )
    door = _door(query="rotate the encryption keys")
    target = {
        "observation": planted["obs"],
        "instruction": planted["ins"],
        "model": planted["query"],
    }[variant]
    for other in ("observation", "instruction", "model"):
        r = _retrieve(other, index, ctx, door)
        assert (target.id in r.last_ids) == (other == variant), (other, r.last_ids)


def test_model_variant_uses_the_query_the_model_wrote(world) -> None:
    _, _, planted, index = world
    ctx = StepContext(env="toy", instruction="x", history=[], observation="y", step=0)
    r = _retrieve("model", index, ctx, _door(query="rotate the encryption keys"))
    assert r.last_query == "rotate the encryption keys" and r.last_ids[0] == planted["query"].id


def test_both_takes_model_hits_not_already_chosen(world) -> None:
    cfg, emb, _, _ = world
    shared = _ex("sort the apples", "apples apples orchard")  # lexical AND dense top-1
    runner_up = _ex("sort the apples by weight", "unrelated crates")  # dense top-2 only
    index = build_example_index(
        [shared, runner_up, *(_ex(f"do {w}", f"{w} rows") for w in FILLER)], emb, cfg
    )
    ctx = StepContext(
        env="toy", instruction="x", history=[], observation="apples apples orchard", step=0
    )
    door = _door(query="sort the apples")
    found = {v: _retrieve(v, index, ctx, door).last_ids for v in ("observation", "model", "both")}
    assert found["observation"] == [shared.id] and found["model"] == [shared.id]
    assert found["both"] == [shared.id, runner_up.id]  # only `both` finds the runner-up


def test_docs_and_distill_search_their_own_indexes(world) -> None:
    cfg, emb, _planted, _ = world
    doc = Doc(env="toy", source="d", title="Keys", text="rotate keys with the keyring tool")
    docs_index = build_doc_index(
        [doc, *(Doc(env="toy", source=w, text=w) for w in FILLER)], emb, cfg
    )
    traj = Trajectory(
        task_id="t",
        env="toy",
        instruction="rotate the keys",
        model="m",
        steps=[Step(index=0, observation="keyring", action="list", next_observation="ok")],
    )
    traj_index = build_trajectory_index([traj], emb, cfg)
    ctx = StepContext(
        env="toy", instruction="rotate the keys", history=[], observation="keyring", step=0
    )
    assert _retrieve("docs", docs_index, ctx, _door()).last_ids[0] == doc.id
    assert _retrieve("distill", traj_index, ctx, _door()).last_ids == [traj.id]


def test_none_puts_no_examples_in_the_prompt_and_budget_holds(world) -> None:
    cfg, emb, _, _ = world
    big = [
        _ex(f"task {n} {w}", f"src = 42 {w} " * 40) for n, w in enumerate(FILLER)
    ]  # ~150 tokens each
    index = build_example_index(big, emb, cfg)
    seen: list[ChatRequest] = []

    def act(req: ChatRequest) -> str:
        seen.append(req)
        return "REASON: r\nACTION: submit" if req.meta["step"] >= 1 else "REASON: r\nACTION: list"

    env = ToyEnv()
    task = env.load_suite("toy-5")[
        3
    ]  # starts with "src = 42", which the examples' observations share
    for variant, budget in (("none", 10_000), ("observation", 400), ("both", 700)):
        seen.clear()
        model = ScriptedModel(handlers={"act": act, "query": lambda r: "alpha"})
        door = ModelDoor(model, Config(), None, Accountant(Config()))
        retriever = VariantRetriever(
            variant, index, RetrievalConfig(m1=5, m2=5, token_budget=budget)
        )
        asyncio.run(run_episode(door, env, task, EpisodeSettings(max_steps=3), retriever))
        prompts = [r.messages[1]["content"] for r in seen]
        if variant == "none":
            assert all("ADDITIONAL INFO" not in p for p in prompts)
        else:
            for p in prompts:  # each step's new examples are one block, within the budget
                blocks = [b.split("\n\n")[0] for b in p.split("ADDITIONAL INFO:")[1:]]
                assert blocks, "expected retrieved examples"
                for block in blocks:
                    examples = block.split("--- example ")[1:]
                    assert sum(estimate_tokens(e.split("\n", 1)[1]) for e in examples) <= budget


def test_fill_budget_keeps_rank_order_and_skips_too_large() -> None:
    assert fill_budget(["a" * 40, "b" * 400, "c" * 40], budget=25) == ["a" * 40, "c" * 40]


def test_unknown_variant_and_missing_index_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown retrieval variant"):
        VariantRetriever("magic", None, RetrievalConfig())
    with pytest.raises(ValueError, match="needs an index"):
        VariantRetriever("both", None, RetrievalConfig())
