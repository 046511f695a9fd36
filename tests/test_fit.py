"""Issue 27 item 3: the act prompt fits the model's context, shrunk in a stated order, and a
context overflow the count did not foresee is answered by one smaller try."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from lbi.agents.act_prompt import build_messages
from lbi.agents.fit import ladder
from lbi.agents.react import EpisodeSettings, StepContext, run_episode
from lbi.config import Config
from lbi.envs.toy import ToyEnv
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest, ContextOverflow
from lbi.models.door import ModelDoor
from lbi.models.scripted import ScriptedModel
from lbi.tokens import clip_middle, estimate_tokens, prompt_tokens

BIG = [f"example {n}: " + f"select {n} from t; " * 60 for n in range(4)]  # ~300 tokens each


class Fixed:
    """A retriever that finds the same examples at every step."""

    async def retrieve(
        self, ctx: StepContext, door: object, settings: EpisodeSettings
    ) -> list[str]:
        return list(BIG)


def _episode(
    context: int | None, act, settings: EpisodeSettings
) -> tuple[list[ChatRequest], object]:
    seen: list[ChatRequest] = []

    def record(req: ChatRequest) -> str:
        seen.append(req)
        return act(req)

    model = ScriptedModel(handlers={"act": record})
    model.capabilities = replace(model.capabilities, context_length=context)
    door = ModelDoor(model, Config(), None, Accountant(Config()))
    env = ToyEnv()
    task = env.load_suite("toy-5")[0]
    traj = asyncio.run(run_episode(door, env, task, settings, Fixed()))
    return seen, traj


def test_the_ladder_shrinks_history_then_examples_then_observations() -> None:
    settings = EpisodeSettings(history_steps=4, obs_chars=800)
    shapes = list(ladder(settings, {0: ["old"]}, ["b", "c"], ["a", "b", "c"]))
    steps = [
        (s.settings.history_steps, sorted(s.earlier), s.examples, s.settings.obs_chars, s.middle)
        for s in shapes
    ]
    assert steps == [
        (4, [0], ["b", "c"], 800, False),
        (2, [0], ["b", "c"], 800, False),
        (1, [0], ["b", "c"], 800, False),
        (1, [], ["a", "b", "c"], 800, False),  # the earlier steps' go: all this step retrieved
        (1, [], ["a", "b"], 800, False),
        (1, [], ["a"], 800, False),
        (1, [], [], 800, False),
        (1, [], [], 400, True),
        (1, [], [], 200, True),
    ]


def test_clip_middle_keeps_the_start_and_the_end() -> None:
    text = "HEAD " + "x" * 1000 + " TAIL"
    cut = clip_middle(text, 90)
    assert cut.startswith("HEAD ") and cut.endswith(" TAIL") and "characters cut" in cut
    assert clip_middle("short", 90) == "short"


def test_every_act_prompt_fits_a_small_context_and_a_roomy_one_is_not_touched() -> None:
    def act(req: ChatRequest) -> str:
        return "REASON: r\nACTION: list"

    settings = EpisodeSettings(max_steps=4)
    roomy, _ = _episode(None, act, settings)
    small, traj = _episode(1400, act, settings)
    assert len(small) == len(roomy) == 4
    sizes = [prompt_tokens(r.messages, estimate_tokens) + r.max_tokens for r in small]
    assert all(size <= 1400 for size in sizes), sizes
    assert all(prompt_tokens(r.messages, estimate_tokens) > 1400 for r in roomy[1:])
    # what did not have to go stayed: the objective, and as many examples as fit
    assert all("OBJECTIVE:" in r.messages[1]["content"] for r in small)
    assert any("--- example" in r.messages[1]["content"] for r in small)
    assert traj.steps and not any(s.error and "context" in s.next_observation for s in traj.steps)


def test_an_overflow_the_count_missed_is_tried_once_more_smaller() -> None:
    """An endpoint that states no context but refuses prompts over 4,000 characters."""

    def act(req: ChatRequest) -> str:
        if sum(len(str(m["content"])) for m in req.messages) > 4000:
            raise ContextOverflow("the prompt does not fit the context")
        return "REASON: r\nACTION: list"

    seen, traj = _episode(None, act, EpisodeSettings(max_steps=2))
    sizes = [sum(len(str(m["content"])) for m in r.messages) for r in seen]
    assert sizes[0] > 4000 and sizes[1] < sizes[0] * 3 / 4 + 200
    assert [s.action for s in traj.steps] == ["list", "list"]


def test_the_real_llama_cpp_server_with_a_1024_token_context_never_overflows() -> None:
    """SmolLM2 in llama.cpp with 1,024 tokens a slot, and ~1,400 tokens of examples at every
    step: the prompts are fitted with the GGUF's own tokenizer, and what llama.cpp reports
    processing plus the answer budget stays within the slot."""
    from lbi.models.registry import make_model

    cfg = Config.model_validate({"models": {"local": {"threads": 1, "n_ctx": 1024}}})
    model = make_model("local", cfg)
    assert model.capabilities.context_length == 1024
    door = ModelDoor(model, cfg, None, Accountant(cfg))
    env = ToyEnv()
    task = env.load_suite("toy-5")[0]
    settings = EpisodeSettings(max_steps=2, max_tokens=96)
    seen: list[int] = []
    chat = door.chat

    async def counted(request: ChatRequest, *, stage: str = "default"):  # type: ignore[no-untyped-def]
        resp = await chat(request, stage=stage)
        seen.append(resp.prompt_tokens + request.max_tokens)
        return resp

    door.chat = counted  # type: ignore[method-assign]
    traj = asyncio.run(run_episode(door, env, task, settings, Fixed()))
    assert len(traj.steps) >= 1 and seen and all(n <= 1024 for n in seen), seen
    # unfitted, the first prompt alone would not have fitted
    first = build_messages(
        "toy", env.action_space(), task.instruction, [], "o", BIG, settings, False
    )
    assert prompt_tokens(first, model.count_tokens) > 1024
    assert not any(s.error and "context" in s.next_observation for s in traj.steps)


def test_the_context_check_tokenizes_only_when_the_byte_bound_does_not_fit() -> None:
    """On every call the door checks the answer budget against the context; when even the
    prompt's UTF-8 byte count leaves room, the prompt is not tokenized (the hot path)."""
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text) // 3

    model = ScriptedModel()
    model.capabilities = replace(model.capabilities, context_length=4096)
    model.count_tokens = count  # type: ignore[attr-defined]
    door = ModelDoor(model, Config(), None, Accountant(Config()))
    small = ChatRequest(messages=[{"role": "user", "content": "héllo " * 100}], max_tokens=512)
    assert door._within_context(small) is small and counted == []
    big = ChatRequest(messages=[{"role": "user", "content": "x " * 4000}], max_tokens=2000)
    fitted = door._within_context(big)
    assert counted  # 8,000 bytes + 2,000 could overflow 4,096: counted, and cut to the room left
    assert fitted.max_tokens == 4096 - prompt_tokens(big.messages, count) < 2000
