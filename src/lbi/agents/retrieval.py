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

from lbi.agents.focus import focus
from lbi.agents.react import EpisodeSettings, StepContext
from lbi.config import RetrievalConfig
from lbi.models.base import ChatRequest
from lbi.models.fitting import fitted_call
from lbi.prompts import render
from lbi.retrieval.examples import RetrievalQuery
from lbi.tokens import Counter, counter_for, estimate_tokens
from lbi.types import Doc, Example, Record, Trajectory

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor
    from lbi.retrieval.examples import ExampleIndex, Hit

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
    """A worked example: each observation keeps, within `obs_chars`, what its action acted on."""
    if isinstance(record, Doc):
        return f"Documentation — {record.title}:\n{record.text}"
    if isinstance(record, Example | Trajectory):
        steps = record.steps
        return render(
            "example",
            instruction=record.instruction,
            steps=[
                {
                    "observation": focus(s.observation, s.action, obs_chars),
                    "reason": s.reason,
                    "action": s.action,
                }
                for s in steps
            ],
            final=focus(steps[-1].next_observation, "", obs_chars) if steps else "",
        )
    raise TypeError(f"cannot render {type(record).__name__} as an example")


def fill_budget(texts: list[str], budget: int, count: Counter = estimate_tokens) -> list[str]:
    """Keep examples in rank order while they fit; a too-large one is skipped, not truncated.
    `count` is the model's tokenizer where known (`lbi.tokens.counter_for`)."""
    out, used = [], 0
    for text in texts:
        cost = count(text)
        if used + cost <= budget:
            out.append(text)
            used += cost
    return out


async def write_query(ctx: StepContext, door: ModelDoor, settings: EpisodeSettings) -> str:
    def build(keep: float) -> ChatRequest:
        """The request with the observation cut to `keep` of 1,500 characters."""
        prompt = render(
            "query",
            env=ctx.env,
            instruction=ctx.instruction,
            history=[{"action": s.action} for s in ctx.history[-5:]],
            observation=ctx.observation[: int(1500 * keep)],
        )
        return ChatRequest(
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

    stage = f"{settings.stage}:query"
    resp = await fitted_call(door, build, lambda r: door.chat(r, stage=stage))
    query = resp.text.strip().splitlines()[0].strip().strip('"') if resp.text.strip() else ""
    return query or ctx.instruction


class VariantRetriever:
    """Satisfies `lbi.agents.react.StepRetriever`. One instance per episode."""

    def __init__(
        self,
        variant: str,
        index: ExampleIndex | None,
        cfg: RetrievalConfig,
        exclude: frozenset[str] = frozenset(),
        query_door: ModelDoor | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown retrieval variant {variant!r}; use one of {', '.join(VARIANTS)}"
            )
        if variant != "none" and index is None:
            raise ValueError(f"variant {variant!r} needs an index")
        self.variant, self.index, self.cfg = variant, index, cfg
        self.exclude = exclude  # record ids this episode may not see (its own task's data)
        self.query_door = query_door  # writes the search query (`roles.query`); else the agent
        self._once: list[Hit] | None = None
        self.last_ids: list[str] = []  # what the last step retrieved, for tests and traces
        self.last_query: str | None = None

    async def _query(
        self, ctx: StepContext, door: ModelDoor, settings: EpisodeSettings
    ) -> RetrievalQuery:
        """What this variant searches with at this step: the observation (top m1, BM25/exact)
        and a dense query (top m2 among the rest); a count of 0 leaves that search out."""
        m1, m2 = self.cfg.m1, self.cfg.m2
        v = self.variant
        if v == "instruction":
            return RetrievalQuery(observation="", query=ctx.instruction, m1=0, m2=m2)
        if v == "observation":
            return RetrievalQuery(observation=ctx.observation, m1=m1, m2=0)
        if v == "docs":
            return RetrievalQuery(observation=ctx.observation, query=ctx.instruction, m1=m1, m2=m2)
        self.last_query = await write_query(ctx, self.query_door or door, settings)
        if v == "model":
            return RetrievalQuery(observation="", query=self.last_query, m1=0, m2=m2)
        # both, distill: the paper's procedure
        return RetrievalQuery(observation=ctx.observation, query=self.last_query, m1=m1, m2=m2)

    async def retrieve(
        self, ctx: StepContext, door: ModelDoor, settings: EpisodeSettings
    ) -> list[str]:
        if self.variant == "none" or self.index is None:
            return []
        if self.variant == "instruction" and self._once is not None:
            hits = self._once  # searched once per episode
        else:
            query = await self._query(ctx, door, settings)
            hits = self.index.retrieve(query.model_copy(update={"exclude": self.exclude}))
            if self.variant == "instruction":
                self._once = hits
        self.last_ids = [h.id for h in hits]
        return fill_budget(
            [render_record(h.record) for h in hits], self.cfg.token_budget, counter_for(door)
        )
