"""Multi-try policies (Reflexion, LATS) in numbers: pass@1 next to final success, and the spend.

pass@1 is the first try's success, as the environment judged it; final is the try the policy
settled on (the evaluation's `success`). Both are means over episodes, with the tries,
reflections, tree nodes and model calls an episode took, and its cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from lbi.types import EvalResult


class TrialSummary(BaseModel):
    variant: str
    episodes: int
    pass_at_1: float  # the first try's success
    final: float  # the settled-on try's success
    mean_trials: float
    mean_reflections: float
    mean_nodes: float
    mean_calls: float
    mean_tokens: float
    mean_cost_usd: float


def trial_summaries(results: Sequence[EvalResult]) -> list[TrialSummary]:
    """One summary per variant whose episodes made several tries (`trials` recorded)."""
    by: dict[str, list[EvalResult]] = {}
    for r in results:
        if r.trials:
            by.setdefault(r.variant, []).append(r)
    out = []
    for variant, rs in sorted(by.items()):
        n = len(rs)

        def mean(xs: Sequence[float], n: int = n) -> float:
            return sum(xs) / n

        out.append(
            TrialSummary(
                variant=variant,
                episodes=n,
                pass_at_1=mean([bool(r.first_success) for r in rs]),
                final=mean([r.success for r in rs]),
                mean_trials=mean([r.trials for r in rs]),
                mean_reflections=mean([r.reflections for r in rs]),
                mean_nodes=mean([r.nodes for r in rs]),
                mean_calls=mean([r.calls for r in rs]),
                mean_tokens=mean([r.prompt_tokens + r.completion_tokens for r in rs]),
                mean_cost_usd=mean([r.cost_usd for r in rs]),
            )
        )
    return out
