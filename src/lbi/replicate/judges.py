"""How often the filter is right: the judge committee measured against gold (issue 29, item 4).

A labelled set is built from the environment's reference solutions. *True* pairs are a gold
trajectory with the instruction it really carried out (`pipeline.gold.true_label`); *false*
pairs are of four stated kinds, each made from one gold trajectory:

- `other-instruction`: the trajectory with another task's true instruction;
- `cut`: the trajectory stopped halfway (only where it has two steps or more);
- `changed-values`: its instruction with the numbers or quoted values changed (where it has any);
- `failed`: a failed episode of the same task (the empty-answer floor policy), true instruction.

The configured judges then judge every pair with the filter's own stage (`judge_examples`: the
same prompt, batching, cache and resume), and each setting's decisions are scored: the rules
alone, each judge alone (behind the rules, as in the filter), the committee combined with
`all` (the default, the paper's unanimous vote) and `majority`, and the graded committee (each
criterion scored 1-5, kept when every criterion's mean reaches a threshold). A pair counts as kept when the
setting keeps it; precision is the share of kept pairs that are true, recall the share of true
pairs kept; every share has a 95% Wilson interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbi.agents.react import EpisodeSettings, FixedPolicy, drive
from lbi.envs.base import Environment
from lbi.envs.calls import env_close
from lbi.eval.harness import floor_actions
from lbi.eval.stats import wilson
from lbi.pipeline.filter import CRITERIA, decide
from lbi.pipeline.gold import gold_examples
from lbi.pipeline.rules import rule_failures
from lbi.types import Example, Task, Trajectory, Verdict

KINDS = ("true", "other-instruction", "cut", "changed-values", "failed")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = re.compile(r"(['\"])([^'\"]{1,60})\1")


@dataclass(frozen=True)
class Pair:
    example: Example
    kind: str

    @property
    def truth(self) -> bool:
        return self.kind == "true"


def changed_values(text: str) -> str:
    """The instruction with each number changed (n -> 2n + 3) and, failing that, each quoted
    value reversed ('Alice' -> 'ecilA'); the same text where it states no value."""
    out = _NUMBER.sub(lambda m: _other_number(m.group()), text)
    if out != text:
        return out
    return _QUOTED.sub(lambda m: m.group(1) + m.group(2)[::-1] + m.group(1), text)


def _other_number(n: str) -> str:
    value = float(n)
    other = 2 * value + 3
    return str(int(other)) if "." not in n else f"{other:g}"


def _relabel(ex: Example, instruction: str, steps: int | None = None) -> Example:
    """The example with another instruction (and only its first `steps` steps), new id."""
    kept = ex.steps[: steps or len(ex.steps)]
    out = ex.model_copy(
        update={"instruction": instruction, "steps": kept, "j": ex.i + len(kept) - 1}
    )
    return out.model_copy(update={"id": out.compute_id()})


def labelled_set(gold: Sequence[Trajectory], failed: dict[str, Trajectory]) -> list[Pair]:
    """True and false pairs from successful gold trajectories (in task-id order) and, per task
    id, a failed trajectory of that task."""
    trajs = sorted((t for t in gold if t.success and t.steps), key=lambda t: (t.task_id, t.id))
    examples = gold_examples(trajs)
    labels = [ex.instruction for ex in examples]
    pairs: list[Pair] = []
    for n, ex in enumerate(examples):
        pairs.append(Pair(ex, "true"))
        others = (labels[(n + k) % len(labels)] for k in range(1, len(labels)))
        other = next((o for o in others if o != ex.instruction), None)
        if other is not None:
            pairs.append(Pair(_relabel(ex, other), "other-instruction"))
        if len(ex.steps) >= 2:
            pairs.append(Pair(_relabel(ex, ex.instruction, len(ex.steps) // 2), "cut"))
        changed = changed_values(ex.instruction)
        if changed != ex.instruction:
            pairs.append(Pair(_relabel(ex, changed), "changed-values"))
        bad = failed.get(ex.task_id)
        if bad is not None and bad.steps and not bad.success:
            made = gold_examples([bad], only_success=False)[0]
            pairs.append(Pair(_relabel(made, ex.instruction), "failed"))
    return pairs


async def failed_episodes(
    make_env: Callable[[], Environment], tasks: Sequence[Task], seed: int
) -> dict[str, Trajectory]:
    """The empty-answer floor policy on each task (the constant one where a task has no
    finishing action): an episode that fails, kept per task id where it did fail."""
    out: dict[str, Trajectory] = {}
    for task in tasks:
        env = make_env()
        try:
            actions = floor_actions(env, "floor:empty", 1) or floor_actions(
                env, "floor:constant", 2
            )
            if not actions:
                continue
            settings = EpisodeSettings(
                max_steps=len(actions), seed=seed, sample=seed, variant="floor:empty"
            )
            traj = await drive(env, task, "floor", settings, FixedPolicy(actions))
        finally:
            await env_close(env)
        if not traj.success:
            out[task.id] = traj
    return out


@dataclass
class Score:
    """One setting's decisions against the truth, with 95% Wilson intervals."""

    setting: str
    n: int
    kept: int
    true_kept: int
    true_total: int
    correct: int
    rejected_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def precision(self) -> tuple[float, float, float]:
        return _share(self.true_kept, self.kept)

    @property
    def recall(self) -> tuple[float, float, float]:
        return _share(self.true_kept, self.true_total)

    @property
    def accuracy(self) -> tuple[float, float, float]:
        return _share(self.correct, self.n)


def _share(k: int, n: int) -> tuple[float, float, float]:
    lo, hi = wilson(k, n)
    return (k / n if n else float("nan"), lo, hi)


def score(setting: str, pairs: Sequence[Pair], keep: Sequence[bool]) -> Score:
    by_kind: dict[str, tuple[int, int]] = {}
    for p, k in zip(pairs, keep, strict=True):
        rejected, total = by_kind.get(p.kind, (0, 0))
        by_kind[p.kind] = (rejected + (not k), total + 1)
    return Score(
        setting=setting,
        n=len(pairs),
        kept=sum(keep),
        true_kept=sum(k for p, k in zip(pairs, keep, strict=True) if p.truth),
        true_total=sum(p.truth for p in pairs),
        correct=sum(k == p.truth for p, k in zip(pairs, keep, strict=True)),
        rejected_by_kind={k: by_kind[k] for k in KINDS if k in by_kind},
    )


GRADES = (3.0, 4.0, 5.0)  # the graded committee's thresholds on the page


def scores(
    pairs: Sequence[Pair],
    verdicts: Sequence[Verdict],
    judges: Sequence[str],
    max_chars: int,
    graded: Sequence[Verdict] = (),
) -> tuple[list[Score], list[Score]]:
    """Every setting's score (rules, each judge, `all`, `majority`, and with `graded` verdicts
    the graded committee at each threshold of GRADES), and each judge's score per criterion
    (the criterion alone deciding, behind the rules)."""
    examples = [p.example for p in pairs]
    rules = [not rule_failures(ex.steps, max_chars) for ex in examples]
    got: dict[tuple[str, str], Verdict] = {(v.example_id, v.judge): v for v in verdicts}
    settings = [score("rules only", pairs, rules)]
    per_criterion = []
    for judge in judges:
        mine = [got.get((ex.id, judge)) for ex in examples]
        keep = [r and v is not None and v.accept for r, v in zip(rules, mine, strict=True)]
        settings.append(score(f"judge {judge}", pairs, keep))
        for c in CRITERIA:
            keep_c = [
                r and v is not None and v.criteria.get(c, False)
                for r, v in zip(rules, mine, strict=True)
            ]
            per_criterion.append(score(f"{judge} · {c}", pairs, keep_c))
    for combine in ("all", "majority"):
        decided = decide(examples, list(verdicts), list(judges), combine, max_chars)
        settings.append(score(f"committee `{combine}`", pairs, [d.kept for d in decided]))
    for t in GRADES if graded else ():
        decided = decide(examples, list(graded), list(judges), "graded", max_chars, threshold=t)
        settings.append(score(f"graded, mean ≥ {t:g}", pairs, [d.kept for d in decided]))
    return settings, per_criterion


def _pct(v: tuple[float, float, float]) -> str:
    value, lo, hi = v
    if value != value:  # nan: nothing to divide by
        return "—"
    return f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def table(rows: Sequence[Score]) -> list[str]:
    kinds = [k for k in KINDS if any(k in r.rejected_by_kind for r in rows)]
    head = "| setting | kept / pairs | precision % [95% CI] | recall % [95% CI] | accuracy % [95% CI] | "
    head += " | ".join(f"{k} rejected" for k in kinds) + " |"
    lines = [head, "|" + "---|" * (5 + len(kinds))]
    for r in rows:
        rejected = [
            f"{r.rejected_by_kind[k][0]}/{r.rejected_by_kind[k][1]}"
            if k in r.rejected_by_kind
            else "—"
            for k in kinds
        ]
        lines.append(
            f"| {r.setting} | {r.kept}/{r.n} | {_pct(r.precision)} | {_pct(r.recall)} | "
            f"{_pct(r.accuracy)} | " + " | ".join(rejected) + " |"
        )
    return lines


def kind_counts(pairs: Sequence[Pair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return {k: counts[k] for k in KINDS if k in counts}


def summary(pairs: Sequence[Pair], settings: Sequence[Score]) -> dict[str, Any]:
    """The page's figures as data (also printed by the command)."""
    return {
        "pairs": kind_counts(pairs),
        "settings": {
            s.setting: {
                "precision": s.precision[0],
                "recall": s.recall[0],
                "accuracy": s.accuracy[0],
            }
            for s in settings
        },
    }
