"""Agent Data Protocol out: kept examples and whole trajectories as ADP trajectories.

ADP (arXiv 2510.24702, github neulab/agent-data-protocol) is a pydantic schema, not a package:
no release on PyPI ships it, so the models below restate it. They follow ADP schema version
1.2.0 as published at commit 09e778b73a6e0f1bb5861f6b5e310fdafd3821b1 (schema/SCHEMA.md,
schema/version.py, schema/action/action.py there): a `Trajectory` of `schema_version`, `id`,
`content` (actions and observations, each tagged by `class_`), optional `available_apis`, and
`details`; every model rejects extra fields. Only the classes lbi writes are restated (no
image or web observations: lbi's observations are text), and `CodeAction.language` is limited
to the few of ADP's languages lbi's environments write.

How lbi's records map, so that reading a file back gives the records again:
- the instruction is the first `TextObservation` (source "user");
- each observation is a `TextObservation` (source "environment"), written once where a
  step's observation is the previous step's result; the step's reward rides on its result;
- an action is an `ApiAction` when it is exactly the canonical tool-call string of a tool-use
  environment (`{"name": ..., "arguments": ...}`), a `MessageAction` when that call is the
  `respond` pseudo-tool with only `content`, else a `CodeAction` in the action space's
  language; the step's reason is the action's `description`, a thinking model's text its
  `reasoning_content`;
- lbi's lineage (ids, window, policy, verdicts, error flags, outcome) goes in `details`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field

from lbi.envs.base import ActionSpace
from lbi.envs.tools.actions import RESPOND, format_tool_action, parse_tool_action
from lbi.pipeline.export import Pair, lineage, write_jsonl
from lbi.pipeline.filter import Decision
from lbi.types import Step, Trajectory, Verdict

ADP_VERSION: Final = "1.2.0"
ADP_COMMIT: Final = "09e778b73a6e0f1bb5861f6b5e310fdafd3821b1"
# A subset of ADP's CodeAction.language literal: the languages lbi's action spaces declare.
CodeLanguage = Literal["python", "sql", "bash", "shell", "json", "text"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Action(_Strict):
    reasoning_content: str | None = None
    reward: float | None = None


class ApiAction(_Action):
    class_: Literal["api_action"] = "api_action"
    function: str
    kwargs: dict[str, Any]
    description: str | None = None


class CodeAction(_Action):
    class_: Literal["code_action"] = "code_action"
    language: CodeLanguage
    content: str
    description: str | None


class MessageAction(_Action):
    class_: Literal["message_action"] = "message_action"
    content: str
    description: str | None = None


class TextObservation(_Strict):
    class_: Literal["text_observation"] = "text_observation"
    content: str
    name: str | None = None
    source: Literal["user", "agent", "environment"]
    reward: float | None = None


Item = Annotated[
    ApiAction | CodeAction | MessageAction | TextObservation, Field(discriminator="class_")
]


class AdpTrajectory(_Strict):
    schema_version: Literal["1.2.0"] = ADP_VERSION
    id: str
    content: list[Item]
    available_apis: list[str] | None = None  # lbi has no per-dataset api.py: never set
    details: dict[str, Any] = Field(default_factory=dict)


def _action(step: Step, space: ActionSpace) -> ApiAction | CodeAction | MessageAction:
    thinking = step.thinking or None
    if space.tools:
        call = parse_tool_action(step.action)
        if not isinstance(call, Exception) and format_tool_action(call.name, call.arguments) == (
            step.action
        ):
            text = call.arguments.get("content")
            if (
                call.name == RESPOND
                and set(call.arguments) == {"content"}
                and isinstance(text, str)
            ):
                return MessageAction(
                    content=text, description=step.reason, reasoning_content=thinking
                )
            return ApiAction(
                function=call.name,
                kwargs=call.arguments,
                description=step.reason,
                reasoning_content=thinking,
            )
    language = space.language if space.language in get_args(CodeLanguage) else "text"
    return CodeAction(
        language=cast(CodeLanguage, language),
        content=step.action,
        description=step.reason,
        reasoning_content=thinking,
    )


def _content(instruction: str, steps: list[Step], space: ActionSpace) -> list[Item]:
    out: list[Item] = [TextObservation(content=instruction, source="user")]
    shown: str | None = None  # the observation the content last ended with
    for step in steps:
        if step.observation != shown:
            out.append(TextObservation(content=step.observation, source="environment"))
        out.append(_action(step, space))
        out.append(
            TextObservation(content=step.next_observation, source="environment", reward=step.reward)
        )
        shown = step.next_observation
    return out


def example_to_adp(d: Decision, verdicts: list[Verdict], space: ActionSpace) -> AdpTrajectory:
    details = {
        k: v for k, v in lineage(d, verdicts).items() if k not in ("id", "instruction", "steps")
    }
    details.update(lbi_record="example", step_errors=[s.error for s in d.example.steps])
    ex = d.example
    return AdpTrajectory(
        id=ex.id, content=_content(ex.instruction, ex.steps, space), details=details
    )


def trajectory_to_adp(t: Trajectory, space: ActionSpace) -> AdpTrajectory:
    keep = ("task_id", "env", "model", "seed", "sample", "variant", "reward", "success")
    details: dict[str, Any] = {k: getattr(t, k) for k in keep}
    details.update(
        lbi_record="trajectory",
        terminated=t.terminated,
        truncated=t.truncated,
        stop_reason=t.stop_reason,
        step_errors=[s.error for s in t.steps],
    )
    return AdpTrajectory(id=t.id, content=_content(t.instruction, t.steps, space), details=details)


def export_adp(
    path: Path,
    pairs: Iterable[Pair],
    trajectories: Callable[[], Iterable[Trajectory]],
    space: ActionSpace,
) -> int:
    """One ADP trajectory per JSON line, written as they come: the examples (in the id order the
    pairs come in), then `trajectories()` (called once the examples are written, so it may
    depend on them)."""

    def rows() -> Iterator[dict[str, Any]]:
        for d, vs in pairs:
            yield _dump(example_to_adp(d, vs, space))
        for t in trajectories():
            yield _dump(trajectory_to_adp(t, space))

    return write_jsonl(path, rows())


def _dump(t: AdpTrajectory) -> dict[str, Any]:
    return t.model_dump(mode="json", exclude={"available_apis"})


def read_adp(path: Path) -> list[AdpTrajectory]:
    """Every line of an ADP JSONL file, validated (pydantic.ValidationError on a bad one)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [AdpTrajectory.model_validate(json.loads(line)) for line in lines if line.strip()]


def _action_text(item: ApiAction | CodeAction | MessageAction) -> str:
    if isinstance(item, ApiAction):
        return format_tool_action(item.function, item.kwargs)
    if isinstance(item, MessageAction):
        return format_tool_action(RESPOND, {"content": item.content})
    return item.content


def adp_steps(t: AdpTrajectory) -> tuple[str, list[dict[str, Any]]]:
    """The instruction and the steps an lbi export wrote (observation, reason, thinking, action,
    next_observation, reward, error) read back from an ADP trajectory."""
    first, *rest = t.content
    if not isinstance(first, TextObservation) or first.source != "user":
        raise ValueError(f"ADP trajectory {t.id}: the first item is not the user's instruction")
    errors = list(t.details.get("step_errors", []))
    steps: list[dict[str, Any]] = []
    shown = ""
    pending: dict[str, Any] | None = None
    for item in rest:
        if isinstance(item, TextObservation):
            if pending is not None:
                pending.update(next_observation=item.content, reward=item.reward or 0.0)
                steps.append(pending)
                pending = None
            shown = item.content
            continue
        pending = {
            "observation": shown,
            "reason": item.description or "",
            "thinking": item.reasoning_content or "",
            "action": _action_text(item),
            "error": errors[len(steps)] if len(steps) < len(errors) else False,
        }
    return first.content, steps
