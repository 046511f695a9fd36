"""Stage 5 — exports: OpenAI chat fine-tuning JSONL, a Hugging Face datasets folder, plain JSONL.

Chat samples are rendered with the same prompt builder the agent uses at inference, with the
example's (relabelled) instruction as the OBJECTIVE and the window's earlier steps as HISTORY:
one sample per step, so what a model is trained on is exactly what it will be shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lbi.agents.act_prompt import build_messages
from lbi.agents.react import EpisodeSettings
from lbi.envs.base import ActionSpace
from lbi.pipeline.filter import Decision
from lbi.types import Example, Verdict


def _assistant(step_reason: str, action: str, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    if tools:
        from lbi.envs.tools.actions import parse_tool_action

        call = parse_tool_action(action)
        if not isinstance(call, Exception):
            return {
                "role": "assistant",
                "content": step_reason or None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.arguments, sort_keys=True),
                        },
                    }
                ],
            }
    return {"role": "assistant", "content": f"REASON: {step_reason}\nACTION: {action}"}


def example_to_chats(
    ex: Example, space: ActionSpace, native_tools: bool = False
) -> list[dict[str, Any]]:
    """One OpenAI-chat sample per step of the window."""
    settings = EpisodeSettings()
    out = []
    for k, step in enumerate(ex.steps):
        messages = build_messages(
            ex.env,
            space,
            ex.instruction,
            ex.steps[:k],
            step.observation,
            [],
            settings,
            native_tools,
        )
        tools = space.tools if native_tools else None
        messages.append(_assistant(step.reason, step.action, tools))
        sample: dict[str, Any] = {"messages": messages}
        if tools:
            sample["tools"] = tools
        out.append(sample)
    return out


def lineage(d: Decision, verdicts: list[Verdict]) -> dict[str, Any]:
    ex = d.example
    return {
        "id": ex.id,
        "env": ex.env,
        "instruction": ex.instruction,
        "style": ex.style,
        "kept": d.kept,
        "reject_reasons": d.reasons,
        "doc_id": ex.doc_id,
        "task_id": ex.task_id,
        "trajectory_id": ex.trajectory_id,
        "i": ex.i,
        "j": ex.j,
        "policy": ex.policy,
        "setup": ex.setup,
        "steps": [
            {
                "observation": s.observation,
                "reason": s.reason,
                "action": s.action,
                "next_observation": s.next_observation,
                "error": s.error,
            }
            for s in ex.steps
        ],
        "verdicts": [
            v.model_dump(exclude={"example_id"}) for v in verdicts if v.example_id == ex.id
        ],
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(path)


def export_openai(
    path: Path, decisions: list[Decision], space: ActionSpace, native_tools: bool
) -> int:
    rows = [c for d in decisions for c in example_to_chats(d.example, space, native_tools)]
    write_jsonl(path, rows)
    return len(rows)


def export_plain(path: Path, decisions: list[Decision], verdicts: list[Verdict]) -> int:
    rows = sorted((lineage(d, verdicts) for d in decisions), key=lambda r: r["id"])
    write_jsonl(path, rows)
    return len(rows)


def export_hf(
    out: Path,
    decisions: list[Decision],
    verdicts: list[Verdict],
    space: ActionSpace,
    native_tools: bool,
    card: dict[str, Any],
) -> int:
    """A `datasets` folder: data/train.parquet (lineage + chat messages) and a dataset card."""
    try:
        import datasets
    except ImportError:
        raise RuntimeError(
            "the hf export needs the `datasets` package: pip install 'lbi[export]'"
        ) from None
    rows = []
    for d in sorted(decisions, key=lambda d: d.example.id):
        row = lineage(d, verdicts)
        row["messages"] = json.dumps(
            example_to_chats(d.example, space, native_tools), ensure_ascii=False
        )
        for key in ("setup", "steps", "verdicts", "reject_reasons"):
            row[key] = json.dumps(row[key], sort_keys=True, ensure_ascii=False)
        rows.append(row)
    (out / "data").mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(out / "data" / "train.parquet"))
    counts = "\n".join(f"- {k}: {v}" for k, v in card.get("counts", {}).items())
    config_yaml = card.get("config", "")
    (out / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.parquet\n---\n"
        f"# {card.get('name', 'lbi dataset')}\n\n"
        "Instruction–trajectory examples synthesized by lbi (learn-by-interact): tasks from the "
        "environment's documentation, agent rollouts, backward construction, committee filtering.\n\n"
        f"## Counts\n{counts}\n\n## Config\n```yaml\n{config_yaml}\n```\n"
    )
    return len(rows)
