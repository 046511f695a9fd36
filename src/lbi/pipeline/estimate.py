"""`--dry-run`: how many model calls, tokens and dollars a synth or eval would spend, at most.

Counted from the config and the environment alone (no model is loaded, nothing is stored): every
episode is taken to run all its steps, and every call to send a full prompt and use its whole
completion allowance, so the figures are ceilings; a real run stops early and hits the cache.
Money comes from `prices:` (USD per million tokens per model spec); a model with no price costs 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lbi.config import Config
from lbi.envs.base import Environment
from lbi.pipeline.tasks import doc_chunks

PROMPT_PER_STEP = 1500  # tokens: system prompt, action space, task, history and retrieved examples
COMPLETION_PER_STEP = 200  # tokens: reason + action
PROMPT_PER_LABEL = 2500  # backward construction and judging see whole windows of steps
COMPLETION_PER_LABEL = 400


@dataclass(frozen=True)
class Estimate:
    what: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    def line(self) -> str:
        return (
            f"dry run: {self.what}: at most {self.calls} model calls, "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, "
            f"${self.cost_usd:.4f} at the configured prices; nothing was run or stored"
        )


def _cost(config: Config, model: str, prompt: int, completion: int) -> float:
    price = config.prices.get(model)
    if price is None:
        return 0.0
    return (prompt * price.prompt + completion * price.completion) / 1e6


def _estimate(config: Config, what: str, steps: int, labels: int) -> Estimate:
    prompt = steps * PROMPT_PER_STEP + labels * PROMPT_PER_LABEL
    completion = steps * COMPLETION_PER_STEP + labels * COMPLETION_PER_LABEL
    return Estimate(
        what, steps + labels, prompt, completion, _cost(config, config.model, prompt, completion)
    )


def synth_estimate(config: Config, env: Environment) -> Estimate:
    cfg = config.synth
    chunks = len(doc_chunks(env, cfg))
    tasks = chunks * cfg.tasks_per_chunk
    if cfg.task_source != "docs":
        tasks += cfg.explore_tasks * len(env.sample_tasks())
    if cfg.max_tasks:
        tasks = min(tasks, cfg.max_tasks)
    episodes = tasks * cfg.samples
    steps = episodes * cfg.max_steps
    windows = episodes * len(cfg.styles) * cfg.max_steps  # a window can end at every step
    backward = windows if cfg.backward_policy == "all" else math.ceil(windows / cfg.backward_batch)
    judges = len(cfg.judges or [config.model, *config.extra_models])
    judging = judges * math.ceil(windows / max(1, cfg.judge_batch))
    what = f"synth of {tasks} tasks ({chunks} doc chunks) on {config.env} with {config.model}"
    return _estimate(config, what, steps, chunks + backward + judging)


def eval_estimate(
    config: Config, suite: str, tasks: int, variants: list[str], seeds: int, max_steps: int
) -> Estimate:
    """At most `max_steps` calls per episode (the limit lbi.eval.harness.step_limit chose); a
    baseline (Reflexion, LATS) at most its own cap (lbi.agents.baselines.calls_at_most)."""
    from lbi.agents.baselines import BASELINES, calls_at_most

    per_episode = sum(
        calls_at_most(v, config.eval, max_steps) if v in BASELINES else max_steps for v in variants
    )
    what = (
        f"eval of {tasks} {suite} tasks x {len(variants)} variants x {seeds} seeds "
        f"with {config.model}"
    )
    return _estimate(config, what, tasks * seeds * per_episode, 0)
