"""Stage 4 — filtering: rules first, then a committee of LLM judges, then (optionally) replay.

Each judge gives a verdict per criterion with a reason; verdicts are stored. The committee
combines them with `all` (the paper: unanimous) or `majority`, or, with `graded`, each judge
scores each criterion 1-5 and the mean scores must reach `synth.grade_threshold`. Rule-failing examples never reach
a judge. Rejected examples are kept in the store: failures are signal too. A judge call that
fails (after its retries, or refused) stores a `Failure` per example of its batch instead of
verdicts, and the next run judges exactly those examples again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from lbi.envs.base import Environment
from lbi.envs.calls import env_call, env_close
from lbi.executor import make_executor
from lbi.models.base import ChatRequest, ContextOverflow, ModelError
from lbi.models.fitting import prepared
from lbi.pipeline.failures import StageFailures
from lbi.pipeline.rules import StepLike, rule_failures
from lbi.progress import stage_progress
from lbi.prompts import fence, render
from lbi.tokens import budget_counter, prompt_tokens
from lbi.types import Example, Task, Trajectory, Verdict

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor
    from lbi.run import RunContext

STAGE = "filter"
REPLAY = "replay"  # the judge name of replay-check verdicts (not a committee vote)
CRITERIA = ("achieves", "coherent", "natural", "reasonable")
_CRIT: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 160}},
    "required": ["ok", "reason"],
}


_GRADE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string", "maxLength": 160},
    },
    "required": ["score", "reason"],
}


def verdicts_schema(n: int, graded: bool = False) -> dict[str, Any]:
    """One verdict per example; reasons bounded so the JSON always closes within budget."""
    crit = _GRADE if graded else _CRIT
    return {
        "type": "object",
        "properties": {
            "verdicts": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {"example": {"type": "integer"}, **{c: crit for c in CRITERIA}},
                    "required": ["example", *CRITERIA],
                },
            }
        },
        "required": ["verdicts"],
    }


def render_example(ex: Example, obs_chars: int = 800) -> str:
    steps = [
        {"observation": s.observation[:obs_chars], "reason": s.reason, "action": s.action}
        for s in ex.steps
    ]
    return render(
        "example",
        instruction=ex.instruction,
        steps=steps,
        final=ex.steps[-1].next_observation[:obs_chars],
    )


def _grade(v: Any) -> int | None:
    """A 1-5 score from a graded answer (`{"score": 4, ...}` or a bare number); None if none."""
    raw = v.get("score") if isinstance(v, dict) else v
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        score = round(float(raw))
    except ValueError:
        return None
    return min(5, max(1, score))


def parse_verdicts(
    value: Any, examples: list[Example], judge: str, graded: bool = False
) -> list[Verdict]:
    """One Verdict per example; an example the judge did not answer for is rejected, with that
    reason. A graded answer's scores are kept; its yes/no reading is a score of 4 or more."""
    by_n: dict[int, dict[str, Any]] = {}
    for n, item in enumerate(value.get("verdicts", []) if isinstance(value, dict) else []):
        if isinstance(item, dict):
            k = item.get("example", n + 1)
            by_n[int(k) if isinstance(k, int) else n + 1] = item
    out = []
    for n, ex in enumerate(examples, start=1):
        item = by_n.get(n)
        criteria: dict[str, bool] = {}
        reasons: dict[str, str] = {}
        scores: dict[str, int] = {}
        for c in CRITERIA:
            v = item.get(c) if item else None
            if graded:
                scores[c] = _grade(v) or 1
                criteria[c] = scores[c] >= 4
            else:
                ok = v.get("ok") if isinstance(v, dict) else v
                criteria[c] = ok is True
            reasons[c] = (
                str(v.get("reason", ""))
                if isinstance(v, dict)
                else ("no verdict given" if item is None else "")
            )
        out.append(
            Verdict(
                example_id=ex.id,
                judge=judge,
                criteria=criteria,
                reasons=reasons,
                accept=all(criteria.values()),
                scores=scores,
            )
        )
    return out


SYSTEM = "You are a strict reviewer of agent training data. Reply with JSON only."
# What one example's markers add to the prompt (a 16-digit boundary in both), for packing.
_WRAPPER = '<example-0123456789abcdef id="99">\n\n</example-0123456789abcdef>\n'


def judge_prompt(env: str, texts: list[str], graded: bool = False) -> str:
    """The judge's prompt for a batch of rendered examples. The examples come from the
    environment and the agent, so one could try to close its block and speak for the others:
    they are fenced by a boundary none of them holds (see `lbi.prompts.fence`)."""
    return render("judge", env=env, examples=texts, boundary=fence(texts), graded=graded)


def answer_tokens(n: int) -> int:
    """What a judge's answer for `n` examples may take (the request's max_tokens)."""
    return 360 * n + 40


def too_long(ex: Example, judge: str, tokens: int, limit: int) -> Verdict:
    """A rejection for an example the judge cannot read whole: it is not kept unjudged."""
    why = f"too long to judge: {tokens} prompt tokens with the answer's reserve > context {limit}"
    return Verdict(
        example_id=ex.id,
        judge=judge,
        criteria=dict.fromkeys(CRITERIA, False),
        reasons=dict.fromkeys(CRITERIA, why),
        accept=False,
    )


def pack(
    examples: list[Example],
    size: int,
    limit: int | None,
    count: Callable[[str], int],
    judge: str,
    text: Callable[[Example], str] = render_example,
) -> tuple[list[list[Example]], list[Verdict]]:
    """Consecutive groups of at most `size` examples whose judge request (prompt and the answer's
    reserve) fits the judge's context `limit`; an example that cannot fit alone is rejected.
    `text` is an example as the judge reads it (the caller's already rendered copy)."""
    size = max(1, size)
    if limit is None:
        return [examples[k : k + size] for k in range(0, len(examples), size)], []
    base = count(SYSTEM) + count(judge_prompt(examples[0].env if examples else "", []))
    base += 16  # chat-template tokens around the two messages
    groups: list[list[Example]] = []
    rejected: list[Verdict] = []
    group: list[Example] = []
    used = base
    wrapper = count(_WRAPPER)
    for ex in examples:
        cost = count(text(ex)) + wrapper
        if base + cost + answer_tokens(1) > limit:
            rejected.append(too_long(ex, judge, base + cost + answer_tokens(1), limit))
            continue
        if group and (len(group) == size or used + cost + answer_tokens(len(group) + 1) > limit):
            groups.append(group)
            group, used = [], base
        group.append(ex)
        used += cost
    return groups + ([group] if group else []), rejected


async def judge_examples(ctx: RunContext, examples: list[Example]) -> None:
    cfg = ctx.config.synth
    judges = ctx.judges()
    graded = cfg.combine == "graded"
    eligible = [e for e in examples if not rule_failures(e.steps, cfg.max_window_chars)]
    # A yes/no verdict stored before the run turned graded is asked again, with scores.
    have = {v.id for v in ctx.store.all(Verdict) if v.scores} if graded else ctx.store.ids(Verdict)
    failures = StageFailures(ctx, STAGE, len(eligible) * len(judges), "verdicts")
    rendered: dict[str, str] = {}

    def text(e: Example) -> str:
        """An example as the judges read it: rendered once, for packing and for the prompt."""
        if e.id not in rendered:
            rendered[e.id] = render_example(e)
        return rendered[e.id]

    def vid(door: ModelDoor, e: Example) -> str:
        return Verdict(example_id=e.id, judge=door.name, criteria={}, accept=False).id

    async def one(job: tuple[ModelDoor, list[Example]]) -> list[Verdict]:
        door, group = job
        prompt = judge_prompt(group[0].env, [text(e) for e in group], graded)
        req = ChatRequest(
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            max_tokens=answer_tokens(len(group)),
            kind="judge",
            # `graded` only when set, so the yes/no requests' cache keys stay what they were.
            meta={"criteria": list(CRITERIA), "count": len(group)}
            | ({"graded": True} if graded else {}),
        )
        try:
            value = await door.chat_json(req, verdicts_schema(len(group), graded), stage=STAGE)
        except ContextOverflow as e:
            # The count missed (an estimate, or a context the endpoint had not stated): the
            # batch is judged again in halves; an example too long alone is rejected as such.
            if len(group) > 1:
                half = len(group) // 2
                return [*await one((door, group[:half])), *await one((door, group[half:]))]
            sent = prompt_tokens(req.messages, budget_counter(door)) + answer_tokens(1)
            limit = e.limit or door.capabilities.context_length or sent - 1
            return [too_long(group[0], door.name, sent, limit)]
        except ModelError as e:
            # Not the examples' fault (the door counted it in the stage's accounting): each
            # gets a failure and no verdict, so the next run judges them again.
            for e_ in group:
                failures.fail(vid(door, e_), e, f"example {e_.id}, judge {door.name}")
            return []
        return parse_verdicts(value, group, door.name, graded)

    jobs = []
    for door in judges:
        await prepared(door)
        todo = [e for e in eligible if vid(door, e) not in have]
        limit = door.capabilities.context_length
        groups, rejected = pack(todo, cfg.judge_batch, limit, budget_counter(door), door.name, text)
        ctx.commit(rejected)
        jobs += [(door, g) for g in groups]
    total = sum(len(g) for _, g in jobs)
    with stage_progress(
        f"judging ({len(judges)} judge{'s' if len(judges) > 1 else ''})", total, ctx.accountant
    ) as advance:
        async for (door, group), verdicts in make_executor(ctx.config.executor).map(
            one, jobs, ctx.config.door.concurrency
        ):
            outcomes = [failures.outcome(vid(door, e)) for e in group]
            failed = [f for got, _ in outcomes for f in got]
            drop = [d for _, gone in outcomes for d in gone]
            ctx.commit([*verdicts, *failed], drop=drop, replace=graded)
            advance(len(group), failed=len(failed))
            failures.check()
    failures.report()


class Window(Protocol):
    """What a decision reads of an example: its id and its steps."""

    @property
    def id(self) -> str: ...
    @property
    def steps(self) -> Sequence[StepLike]: ...


W = TypeVar("W", bound=Window)


@dataclass
class Decision(Generic[W]):
    example: W
    kept: bool
    reasons: list[str] = field(default_factory=list)


def replay_verdict(example_id: str, passed: bool) -> Verdict:
    return Verdict(
        example_id=example_id,
        judge=REPLAY,
        criteria={"replay": passed},
        accept=passed,
        reasons={"replay": "" if passed else "re-executing the window gave another final state"},
    )


def decide(
    examples: Sequence[W],
    verdicts: list[Verdict],
    judges: list[str],
    combine: str,
    max_chars: int,
    replay: bool = False,
    threshold: float = 4.0,
) -> list[Decision[W]]:
    """Rules, then the committee (`all`, `majority`, or `graded`: every criterion's mean score
    across the judges at least `threshold`), then — when asked — the replay check."""
    by_ex: dict[str, dict[str, Verdict]] = {}
    for v in verdicts:
        by_ex.setdefault(v.example_id, {})[v.judge] = v
    out = []
    for ex in examples:
        rules = rule_failures(ex.steps, max_chars)
        if rules:
            out.append(Decision(ex, False, [f"rule:{r}" for r in rules]))
            continue
        got = by_ex.get(ex.id, {})
        votes = [got[j].accept if j in got else False for j in judges]
        if combine == "graded":
            kept = _graded([got.get(j) for j in judges], threshold)
        else:
            kept = all(votes) if combine == "all" else sum(votes) * 2 > len(votes)
        reasons = [
            f"{j}:{c}: {got[j].reasons.get(c, '')}".strip()
            for j in judges
            if j in got
            for c, ok in got[j].criteria.items()
            if not ok
        ] + [f"{j}: no verdict" for j in judges if j not in got]
        if kept and replay and not (REPLAY in got and got[REPLAY].accept):
            kept = False
            reasons.append(
                "replay: "
                + (got[REPLAY].reasons.get("replay", "") if REPLAY in got else "not checked")
            )
        out.append(Decision(ex, kept, reasons))
    return out


def _graded(verdicts: list[Verdict | None], threshold: float) -> bool:
    """Every criterion's mean score across the judges reaches the threshold; a judge with no
    graded verdict scores 1."""
    if not verdicts:
        return False
    for c in CRITERIA:
        marks = [v.scores.get(c, 1) if v is not None and v.scores else 1 for v in verdicts]
        if sum(marks) / len(marks) < threshold:
            return False
    return True


async def replay_check(
    examples: list[Example],
    trajectories: dict[str, Trajectory],
    tasks: dict[str, Task],
    make_env: Callable[[], Environment],
) -> dict[str, bool]:
    """Re-execute each window (after its prefix) in a fresh environment; require the recorded digest."""
    out: dict[str, bool] = {}
    for ex in examples:
        traj, task = trajectories.get(ex.trajectory_id), tasks.get(ex.task_id)
        if traj is None or task is None or not traj.steps[ex.j].digest:
            out[ex.id] = False
            continue
        env = await asyncio.to_thread(make_env)
        try:
            await env_call(env, env.reset, task, traj.seed)
            for s in traj.steps[: ex.j + 1]:
                if not (s.error and not s.next_observation.startswith("Error: could not read")):
                    await env_call(env, env.step, s.action)
            out[ex.id] = (await env_call(env, env.state_digest)) == traj.steps[ex.j].digest
        finally:
            await env_close(env)
    return out
