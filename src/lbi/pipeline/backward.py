"""Stage 3 — backward construction: label what each window of a trajectory actually does.

For each selected window steps[i..j] the model writes (1) a new task instruction and (2) a
"Replicate the following: ..." summary. `all` sends one window per call (the paper); the
cheaper policies send `backward_batch` windows per call. Every example keeps its provenance.

A trajectory is marked done when all its batches are labelled. A batch that fails leaves a
`Failure` for the trajectory and marks the batches that did not fail, so the next run asks
again for exactly the failed ones.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lbi.agents.focus import focus
from lbi.executor import make_executor
from lbi.models.base import ChatRequest, ContextOverflow, ModelError
from lbi.models.fitting import prepared
from lbi.pipeline.failures import StageFailures
from lbi.pipeline.tasks import MAX_TEXT
from lbi.pipeline.windows import Window, select_windows
from lbi.progress import stage_progress
from lbi.prompts import fence, render
from lbi.tokens import Counter, budget_counter, prompt_tokens
from lbi.types import Example, Step, Task, Trajectory, content_id

if TYPE_CHECKING:
    from lbi.run import RunContext

log = logging.getLogger(__name__)
STAGE = "backward"
REPLICATE_PREFIX = "Replicate the following: "


def labels_schema(n: int) -> dict[str, Any]:
    """One label per window, each text bounded so a looping model still ends its JSON."""
    text = {"type": "string", "maxLength": MAX_TEXT}
    return {
        "type": "object",
        "properties": {
            "labels": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {"window": {"type": "integer"}, "task": text, "replicate": text},
                    "required": ["window", "task", "replicate"],
                },
            }
        },
        "required": ["labels"],
    }


def render_window(traj: Trajectory, i: int, j: int, obs_chars: int = 800) -> str:
    steps = traj.steps[i : j + 1]
    return render(
        "example",
        instruction="(unknown: this is what you must write)",
        steps=[
            {
                "observation": focus(s.observation, s.action, obs_chars),
                "reason": s.reason,
                "action": s.action,
            }
            for s in steps
        ],
        final=focus(steps[-1].next_observation, "", obs_chars),
    ).split("\n", 1)[1]


def labels_prompt(env: str, windows: list[str]) -> str:
    """The prompt for a batch of rendered windows, fenced like the judge's examples: a window
    cannot close its block and write the next one's label (see `lbi.prompts.fence`)."""
    return render("backward", env=env, windows=windows, boundary=fence(windows))


def _says_something(text: str) -> bool:
    """A label must describe something: "Replicate the following:" alone, or punctuation, is
    no instruction, and an example built on it teaches nothing (seen from a small model)."""
    rest = text[len(REPLICATE_PREFIX.strip()) :] if _is_replicate(text) else text
    return any(ch.isalnum() for ch in rest)


def _is_replicate(text: str) -> bool:
    return text.lower().startswith(REPLICATE_PREFIX.lower().strip())


def parse_labels(value: Any, count: int) -> dict[int, dict[str, str]]:
    """Window number (1-based) -> {"task", "replicate"}; missing or empty labels are left out.

    A "task" label written in the replicate style is not a task instruction: it is dropped,
    so the two styles stay what they claim to be.
    """
    out: dict[int, dict[str, str]] = {}
    items = value.get("labels", []) if isinstance(value, dict) else []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        w = item.get("window", n + 1)
        w = int(w) if isinstance(w, int | float | str) and str(w).strip().isdigit() else n + 1
        task = " ".join(str(item.get("task") or "").split())
        rep = " ".join(str(item.get("replicate") or "").split())
        if rep and not _is_replicate(rep):
            rep = REPLICATE_PREFIX + rep[0].lower() + rep[1:]
        task = task if _says_something(task) and not _is_replicate(task) else ""
        rep = rep if _says_something(rep) else ""
        if 1 <= w <= count and (task or rep):
            out[w] = {"task": task, "replicate": rep}
    return out


def _light(steps: list[Step]) -> list[Step]:
    """Examples keep the steps without the prompts the model was sent and its thinking: those
    stay with the trajectory (lineage), and exports re-render prompts for the new instruction
    anyway."""
    return [s.model_copy(update={"messages": [], "tools": None, "thinking": ""}) for s in steps]


SYSTEM = "You describe what an agent's actions accomplished. Reply with JSON only."
# A window's observations are shown at this many characters, fewer while it does not fit.
OBS_CHARS = (800, 400, 200, 100)


def label_tokens(n: int) -> int:
    """What the labels of `n` windows may take (the request's max_tokens)."""
    return 330 * n + 40


def label_messages(env: str, texts: list[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": labels_prompt(env, texts)},
    ]


Rendered = tuple[Window, str]


def fits(env: str, group: list[Rendered], limit: int | None, count: Counter) -> bool:
    texts = [t for _, t in group]
    return (
        limit is None
        or prompt_tokens(label_messages(env, texts), count) + label_tokens(len(group)) <= limit
    )


def window_groups(
    traj: Trajectory, windows: list[Window], size: int, limit: int | None, count: Counter
) -> tuple[list[list[Rendered]], int]:
    """Consecutive groups of at most `size` rendered windows whose labelling request fits the
    context `limit`, and how many windows could not fit even alone with their observations
    cut to 100 characters (they are left unlabelled). Without a limit: groups of `size`."""
    groups: list[list[Rendered]] = []
    dropped = 0
    for w in windows:
        one = None
        for chars in OBS_CHARS if limit is not None else OBS_CHARS[:1]:
            one = (w, render_window(traj, *w, obs_chars=chars))
            if fits(traj.env, [one], limit, count):
                break
        else:
            dropped += 1
            continue
        assert one is not None
        last = groups[-1] if groups else None
        if (
            last is not None
            and len(last) < max(1, size)
            and fits(traj.env, [*last, one], limit, count)
        ):
            last.append(one)
        else:
            groups.append([one])
    return groups, dropped


async def construct(
    ctx: RunContext, trajectories: list[Trajectory], tasks: dict[str, Task]
) -> None:
    cfg = ctx.config.synth
    policy = cfg.backward_policy
    batch = 1 if policy == "all" else cfg.backward_batch
    door = ctx.door(ctx.config.role("labels"))
    await prepared(door)
    count = budget_counter(door)
    done = ctx.store.marked(STAGE)
    todo = [t for t in trajectories if f"{policy}:{t.id}" not in done and t.steps]
    failures = StageFailures(ctx, STAGE, len(trajectories), "trajectories")

    def batch_mark(traj: Trajectory, group: list[Window]) -> str:
        return f"{policy}:{traj.id}#{content_id(group, n=8)}"

    async def label(traj: Trajectory, rendered: list[Rendered]) -> tuple[list[Example], bool]:
        """The group's examples, and whether its labelling did not fail (a group labelled by an
        earlier run, its mark stored, is not asked again)."""
        group = [w for w, _ in rendered]
        if batch_mark(traj, group) in done:
            return [], True
        req = ChatRequest(
            messages=label_messages(traj.env, [t for _, t in rendered]),
            max_tokens=label_tokens(len(group)),
            kind="backward",
            meta={
                "windows": [
                    {"actions": [s.action for s in traj.steps[i : j + 1]]} for i, j in group
                ]
            },
        )
        where = f"trajectory {traj.id}, windows {', '.join(f'{i}-{j}' for i, j in group)}"
        try:
            value = await door.chat_json(req, labels_schema(len(group)), stage=STAGE)
        except ContextOverflow as e:
            # The count missed: the group is labelled again in halves; a window too long alone
            # is left unlabelled (no example can come from what the model cannot read).
            if len(rendered) == 1:
                log.info("backward: %s is too long for the labeller's context (%s)", where, e)
                return [], True
            half = len(rendered) // 2
            parts = [await label(traj, rendered[:half]), await label(traj, rendered[half:])]
            return [ex for got, _ in parts for ex in got], all(ok for _, ok in parts)
        except ModelError as e:
            failures.fail(traj.id, e, where)
            value = None
        labels = parse_labels(value, len(group))
        task = tasks.get(traj.task_id)
        out = []
        for n, (i, j) in enumerate(group, start=1):
            for style in cfg.styles:
                text = labels.get(n, {}).get(style, "")
                if text:
                    out.append(
                        Example(
                            env=traj.env,
                            instruction=text,
                            style=style,
                            trajectory_id=traj.id,
                            task_id=traj.task_id,
                            doc_id=task.doc_id if task else None,
                            i=i,
                            j=j,
                            policy=policy,
                            steps=_light(traj.steps[i : j + 1]),
                            setup=task.setup if task else {},
                        )
                    )
        return out, value is not None  # None: the call failed (failures has the reason)

    async def one(traj: Trajectory) -> tuple[list[Example], list[str]]:
        """The trajectory's examples, and the marks of the batches that did not fail."""
        windows = select_windows(traj, policy, cfg.max_window, cfg.max_window_chars)
        groups, dropped = window_groups(
            traj, windows, batch, door.capabilities.context_length, count
        )
        if dropped:
            log.info(
                "backward: %d windows of %s do not fit the labeller's context", dropped, traj.id
            )
        labelled = await asyncio.gather(*(label(traj, g) for g in groups))
        marks = [
            batch_mark(traj, [w for w, _ in g])
            for g, (_, ok) in zip(groups, labelled, strict=True)
            if ok
        ]
        return [ex for examples, _ in labelled for ex in examples], marks

    with stage_progress(
        f"backward ({policy})",
        len(trajectories),
        ctx.accountant,
        done=len(trajectories) - len(todo),
    ) as advance:
        async for traj, (examples, batches) in make_executor(ctx.config.executor).map(
            one, todo, ctx.config.door.concurrency
        ):
            failed, drop = failures.outcome(traj.id)
            keys = batches if failed else [f"{policy}:{traj.id}"]
            ctx.commit([*examples, *failed], marks=[(STAGE, k) for k in keys], drop=drop)
            advance(failed=len(failed))
            failures.check()
    failures.report()
