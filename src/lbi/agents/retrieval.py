"""Agentic retrieval (the paper's Algorithm 2) and its baselines, as one setting: the variant.

- `none`: no examples.
- `instruction`: dense search on the instruction, once per episode.
- `observation`: BM25 / exact match on the current observation, top m1, every step.
- `model`: the LLM writes a search query from instruction, history and observation; dense top m2.
- `both`: observation-based top m1, then model-based top m2 not already chosen (the paper).
- `docs`: documentation chunks instead of examples, by observation and instruction (RAG baseline).
- `distill`: the `both` procedure over raw trajectories, without backward construction.
Examples fill ADDITIONAL INFO in rank order until the token budget is reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbi.agents.react import EpisodeSettings, StepContext
from lbi.config import RetrievalConfig
from lbi.models.base import ChatRequest
from lbi.pipeline.chunking import estimate_tokens
from lbi.prompts import render
from lbi.types import Doc, Example, Record, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor
    from lbi.retrieval.examples import ExampleIndex

VARIANTS = ("none", "instruction", "observation", "model", "both", "docs", "distill")
INDEX_FOR = {  # which index each variant searches
    "instruction": "examples",
    "observation": "examples",
    "model": "examples",
    "both": "examples",
    "docs": "docs",
    "distill": "distill",
}


def render_record(record: Record, obs_chars: int = 600) -> str:
    if isinstance(record, Doc):
        return f"Documentation — {record.title}:\n{record.text}"
    if isinstance(record, Example | Trajectory):
        steps = record.steps
        return render(
            "example",
            instruction=record.instruction,
            steps=[
                {"observation": s.observation[:obs_chars], "reason": s.reason, "action": s.action}
                for s in steps
            ],
            final=steps[-1].next_observation[:obs_chars] if steps else "",
        )
    raise TypeError(f"cannot render {type(record).__name__} as an example")


def fill_budget(texts: list[str], budget: int) -> list[str]:
    """Keep examples in rank order while they fit; a too-large one is skipped, not truncated."""
    out, used = [], 0
    for text in texts:
        cost = estimate_tokens(text)
        if used + cost <= budget:
            out.append(text)
            used += cost
    return out


async def write_query(ctx: StepContext, door: ModelDoor, settings: EpisodeSettings) -> str:
    prompt = render(
        "query",
        env=ctx.env,
        instruction=ctx.instruction,
        history=[{"action": s.action} for s in ctx.history[-5:]],
        observation=ctx.observation[:1500],
    )
    req = ChatRequest(
        messages=[
            {
                "role": "system",
                "content": "You write short search queries. Reply with the query only.",
            },
            {"role": "user", "content": prompt},
        ],
        temperature=settings.temperature,
        seed=settings.seed,
        sample=settings.sample,
        max_tokens=48,
        kind="query",
        meta={"instruction": ctx.instruction, "step": ctx.step},
    )
    resp = await door.chat(req, stage=f"{settings.stage}:query")
    query = resp.text.strip().splitlines()[0].strip().strip('"') if resp.text.strip() else ""
    return query or ctx.instruction


class VariantRetriever:
    """Satisfies `lbi.agents.react.StepRetriever`. One instance per episode."""

    def __init__(self, variant: str, index: ExampleIndex | None, cfg: RetrievalConfig) -> None:
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown retrieval variant {variant!r}; use one of {', '.join(VARIANTS)}"
            )
        if variant != "none" and index is None:
            raise ValueError(f"variant {variant!r} needs an index")
        self.variant, self.index, self.cfg = variant, index, cfg
        self._once: list[str] | None = None
        self.last_ids: list[str] = []  # what the last step retrieved, for tests and traces
        self.last_query: str | None = None

    async def retrieve(
        self, ctx: StepContext, door: ModelDoor, settings: EpisodeSettings
    ) -> list[str]:
        if self.variant == "none" or self.index is None:
            return []
        if self.variant == "instruction":
            if self._once is None:
                self._once = [i for i, _ in self.index.search_dense(ctx.instruction, self.cfg.m2)]
            ids = self._once
        elif self.variant == "observation":
            ids = [i for i, _ in self.index.search_lexical(ctx.observation, self.cfg.m1)]
        elif self.variant == "model":
            self.last_query = await write_query(ctx, door, settings)
            ids = [i for i, _ in self.index.search_dense(self.last_query, self.cfg.m2)]
        elif self.variant == "docs":
            ids = [i for i, _ in self.index.search_lexical(ctx.observation, self.cfg.m1)]
            ids += [
                i for i, _ in self.index.search_dense(ctx.instruction, self.cfg.m2, exclude=ids)
            ]
        else:  # both, distill: the paper's procedure
            ids = [i for i, _ in self.index.search_lexical(ctx.observation, self.cfg.m1)]
            self.last_query = await write_query(ctx, door, settings)
            ids += [
                i for i, _ in self.index.search_dense(self.last_query, self.cfg.m2, exclude=ids)
            ]
        self.last_ids = ids
        return fill_budget([render_record(self.index.get(i)) for i in ids], self.cfg.token_budget)
