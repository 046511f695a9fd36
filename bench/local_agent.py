"""Benchmark: the act prompt's layout and llama.cpp's prefix cache, with models that can act.

For each catalogue model, environment and retrieval variant, the same episodes run in one
process with each layout of the act prompt: *old* (retrieved examples first, then objective,
history and the latest observation only); *last* (`prompts/act_user.j2` with every step's
retrieved examples after HISTORY, shown in full again at each step: the layout of 775f95d); and
*kept*, the current one (lbi.agents.shown: a step's examples stay in HISTORY where they were
first shown, and a later step adds only those not shown yet). Without examples (`none`) last
and kept are the same prompt, so `none` runs old and kept. Every act call
records the prompt tokens llama.cpp processed and those it reused from its prefix cache (each
layout starts with the cache empty: `isolate_layouts`)
(`usage.prompt_tokens_details.cached_tokens`), and the wall time of each step.

Retrieval (`both`) draws on gold examples (the environment's reference solutions on the suite's
tasks, each task's own example left out), so the examples change from step to step as they do
with lbi's data; the timing is what this measures, not success. No disk cache: every call runs.

    .venv/bin/python bench/local_agent.py [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
        [--envs sql,miniwob] [--variants none,both] [--tasks 1] [--max-steps 5]

Prints the figures and replaces the "## Local agents: prompt layout" section of
docs/benchmarks.md. Target: after an episode's first step, no token of its system prompt,
objective or earlier history is processed again ("re-processed of shared" = 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from lbi.agents import act_prompt, react
from lbi.agents.react import EpisodeSettings, run_episode
from lbi.agents.retrieval import VariantRetriever
from lbi.agents.shown import ShownExamples
from lbi.config import Config
from lbi.embed.base import make_embedder
from lbi.envs.base import make_env
from lbi.models.accounting import Accountant
from lbi.models.base import ChatRequest, ChatResponse
from lbi.models.door import ModelDoor
from lbi.models.registry import make_model
from lbi.pipeline.gold import gold_examples, gold_rollouts
from lbi.prompts import render
from lbi.retrieval.examples import build_example_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

HEADING = "Local agents: prompt layout"
LAYOUTS = ("old", "last", "kept")
SUITES = {"sql": ("sql:pets_1", "spider-dev-23"), "miniwob": ("miniwob", "miniwob-quick")}
# The act prompt's user message as it was before the layout change (examples first, no START).
OLD_ACT_USER = jinja2.Template(
    """{% if examples %}ADDITIONAL INFO:
Worked examples from this environment that may help:
{% for ex in examples %}
--- example {{ loop.index }} ---
{{ ex }}
{% endfor %}

{% endif %}OBJECTIVE: {{ instruction }}

HISTORY:
{% if history %}{% for h in history %}{{ loop.index }}. ACTION: {{ h.action }}
   RESULT: {{ h.result }}
{% endfor %}{% else %}(no actions yet)
{% endif %}
OBSERVATION:
{{ observation }}
""",
    trim_blocks=True,
)


class EveryStep(ShownExamples):
    """The layouts before examples stayed in HISTORY: each step shows all it retrieved."""

    def show(self, at: int, examples: list[str], visible_from: int = 0) -> list[str]:
        return list(examples)

    def earlier(self, at: int) -> dict[int, list[str]]:
        return {}


def render_old(name: str, **kw: Any) -> str:
    if name != "act_user":
        return render(name, **kw)
    observation = kw["observation"]
    if observation == "(as at START above)":  # the old layout showed the first observation here
        observation = kw["start"]
    return OLD_ACT_USER.render(
        examples=[text for _, text in kw["examples"]],
        instruction=kw["instruction"],
        history=kw["history"],
        observation=observation,
    )


@dataclass
class Call:
    kind: str
    prompt: int
    reused: int
    seconds: float
    tokens: list[int] = field(default_factory=list)  # the act prompt as llama.cpp tokenizes it
    episode: int = 0


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def isolate_layouts() -> None:
    """Let `Recorder.forget` empty the slots (llama.cpp erases a slot only with a slot save
    path) and turn off the server's host-memory prompt cache, which would otherwise hand one
    layout's first prompt to the next: each layout then starts from an empty cache."""
    import xllamacpp

    server = xllamacpp.Server

    def isolated(params: Any) -> Any:
        params.cache_ram_mib = 0
        params.slot_save_path = tempfile.mkdtemp(prefix="lbi-bench-slots-")
        return server(params)

    xllamacpp.Server = isolated


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


@dataclass
class Recorder:
    """Wraps the model: records every call's tokens and time, and each act prompt's tokens
    exactly as the server sees them (its own chat template and tokenizer, over 127.0.0.1)."""

    inner: Any
    calls: list[Call] = field(default_factory=list)
    episode: int = 0

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        resp: ChatResponse = await self.inner.complete(request)
        seconds = time.perf_counter() - started
        tokens = self._tokens(request) if request.kind == "act" else []
        kind = request.kind or ""
        self.calls.append(
            Call(kind, resp.prompt_tokens, resp.cached_prompt_tokens, seconds, tokens, self.episode)
        )
        return resp

    def _tokens(self, request: ChatRequest) -> list[int]:
        base = self.inner.engine.server().listening_address
        prompt = _post(f"{base}/apply-template", {"messages": request.messages})["prompt"]
        body = {"content": prompt, "add_special": False, "parse_special": True}
        return list(_post(f"{base}/tokenize", body)["tokens"])

    def forget(self) -> None:
        """Empty every slot's prompt cache, so a layout cannot reuse the previous one's."""
        base = self.inner.engine.server().listening_address
        for slot in _get(f"{base}/slots"):
            _post(f"{base}/slots/{slot['id']}?action=erase", {})

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    async def aclose(self) -> None:
        await self.inner.aclose()


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def gold_index(env_spec: str, suite: str, cfg: Config) -> tuple[Any, list[Any], dict[str, Any]]:
    """The suite's tasks, an index of their gold examples, and each task's own example ids."""
    env = make_env(env_spec, cfg)
    tasks = env.load_suite(suite)
    env.close()
    trajs = asyncio.run(gold_rollouts(lambda: make_env(env_spec, cfg), tasks, [0]))
    examples = gold_examples(trajs)
    own: dict[str, frozenset[str]] = {}
    for e in examples:
        own[e.task_id] = own.get(e.task_id, frozenset()) | {e.id}
    index = build_example_index(examples, make_embedder(cfg.embed.name, cfg), cfg)
    return index, tasks, own


async def episodes(
    model: Recorder,
    env_spec: str,
    tasks: list[Any],
    variant: str,
    index: Any,
    own: dict[str, frozenset[str]],
    args: Any,
) -> float:
    cfg = Config()
    door = ModelDoor(model, cfg, None, Accountant(cfg))
    started = time.perf_counter()
    for n, task in enumerate(tasks):
        model.episode = n
        env = make_env(env_spec, cfg)
        try:
            # The task's own gold example would be its answer: left out.
            retriever = (
                VariantRetriever(variant, index, cfg.retrieval, own.get(task.id, frozenset()))
                if variant != "none"
                else None
            )
            settings = EpisodeSettings(max_steps=args.max_steps, variant=variant, stage="bench")
            await run_episode(door, env, task, settings, retriever)
        finally:
            env.close()
    return time.perf_counter() - started


def summary(calls: list[Call], wall: float) -> dict[str, float]:
    acts = [c for c in calls if c.kind == "act"]
    firsts = [c for n, c in enumerate(acts) if n == 0 or acts[n - 1].episode != c.episode]
    pairs = [(p, c) for p, c in itertools.pairwise(acts) if p.episode == c.episode]
    later = [c for _, c in pairs]
    # Tokens this act prompt shares with the previous one (system, objective, start, history in
    # the new layout) that llama.cpp processed again instead of reusing them.
    redone = [max(0, _common(p.tokens, c.tokens) - c.reused) for p, c in pairs]
    mean = statistics.fmean
    return {
        "steps": len(acts),
        "first": mean([c.prompt - c.reused for c in firsts]) if firsts else 0.0,
        "prompt": mean([c.prompt for c in later]) if later else 0.0,
        "processed": mean([c.prompt - c.reused for c in later]) if later else 0.0,
        "reused": mean([c.reused for c in later]) if later else 0.0,
        "shared": mean([_common(p.tokens, c.tokens) for p, c in pairs]) if pairs else 0.0,
        "redone": mean(redone) if redone else 0.0,
        "redone_max": float(max(redone)) if redone else 0.0,
        "s_step": wall / max(1, len(acts)),
        "per_min": 60 * len(acts) / wall if wall else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--envs", default="sql,miniwob")
    ap.add_argument("--variants", default="none,both")
    ap.add_argument("--tasks", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    isolate_layouts()
    where = machine()
    rows = []
    for env_name in args.envs.split(","):
        env_spec, suite = SUITES[env_name]
        cfg = Config()
        index, tasks, own = gold_index(env_spec, suite, cfg)
        chosen = tasks[: args.tasks]
        for spec in args.models.split(","):
            mcfg = Config.model_validate({"models": {"local": {"threads": args.threads}}})
            model = Recorder(make_model(f"local:{spec}", mcfg))
            for variant in args.variants.split(","):
                for layout in ("old", "kept") if variant == "none" else LAYOUTS:
                    model.calls = []
                    model.forget()
                    act_prompt.render = render_old if layout == "old" else render  # type: ignore[attr-defined]
                    react.ShownExamples = ShownExamples if layout == "kept" else EveryStep  # type: ignore[misc]
                    try:
                        wall = asyncio.run(
                            episodes(model, env_spec, chosen, variant, index, own, args)
                        )
                    finally:
                        act_prompt.render = render  # type: ignore[attr-defined]
                        react.ShownExamples = ShownExamples  # type: ignore[misc]
                    s = summary(model.calls, wall)
                    rows.append((spec, env_name, variant, layout, s))
                    print(spec, env_name, variant, layout, {k: round(v, 1) for k, v in s.items()})
    lines = [
        f"Machine: {where}. Script: `python bench/local_agent.py --models {args.models} "
        f"--envs {args.envs} --variants {args.variants} --tasks {args.tasks} "
        f"--max-steps {args.max_steps} --threads {args.threads}`. llama.cpp in process "
        "(xllamacpp), 4 slots, greedy, no disk cache; `both` retrieves gold examples (each "
        "task's own left out). Per act call after an episode's first: prompt tokens, how many "
        "llama.cpp processed and reused from its prefix cache; *shared with previous*: the "
        "leading tokens this act prompt has in common with the episode's previous one (server's "
        "own template and tokenizer); *re-processed of shared*: of those, the ones llama.cpp "
        "processed again (target 0). Old = examples first, no START; last = examples after "
        "HISTORY, all of them again at every step (775f95d); kept = prompts/act_user.j2 with "
        "lbi.agents.shown (a step's examples stay where they were first shown). "
        "Act calls include the re-asks of repeated failing actions.",
        "",
        "| model | env | variant | layout | act calls | first call processed | prompt/call | "
        "processed/call | reused/call | shared with previous | re-processed of shared (mean, "
        "max) | s/call | calls/min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, env_name, variant, layout, s in rows:
        lines.append(
            f"| {spec} | {env_name} | {variant} | {layout} | {s['steps']:.0f} | {s['first']:.0f} "
            f"| {s['prompt']:.0f} | {s['processed']:.0f} | {s['reused']:.0f} | {s['shared']:.0f} "
            f"| {s['redone']:.1f}, {s['redone_max']:.0f} | {s['s_step']:.1f} | {s['per_min']:.2f} |"
        )
    write_section(HEADING, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
