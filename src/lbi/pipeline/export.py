"""Stage 5 — exports: OpenAI chat fine-tuning JSONL, a Hugging Face datasets folder, plain JSONL.

Every export streams: it takes (decision, its verdicts) pairs as `synth.iter_decisions` reads
them from the store, a page at a time, and writes each row as it comes (Parquet a row group at a
time), so its memory does not grow with the run.

Chat samples are rendered with the same prompt builder the agent uses at inference, with the
example's (relabelled) instruction as the OBJECTIVE and the window's earlier steps as HISTORY:
one sample per step, so what a model is trained on is exactly what it will be shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from lbi.agents.act_prompt import build_messages
from lbi.agents.react import EpisodeSettings
from lbi.envs.base import ActionSpace
from lbi.pipeline.filter import Decision
from lbi.types import Example, Verdict

Pair = tuple[Decision, list[Verdict]]  # an example's decision and the verdicts behind it
ROW_GROUP = 1000  # rows per Parquet row group (and the most rows the hf export holds at once)


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


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as they come to a temporary file, renamed into place when all are written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def export_openai(path: Path, pairs: Iterable[Pair], space: ActionSpace, native_tools: bool) -> int:
    rows = (c for d, _ in pairs for c in example_to_chats(d.example, space, native_tools))
    return write_jsonl(path, rows)


def export_plain(path: Path, pairs: Iterable[Pair]) -> int:
    """One lineage row per example, in id order (the order the pairs come in)."""
    return write_jsonl(path, (lineage(d, vs) for d, vs in pairs))


def _hf_schema() -> Any:
    import pyarrow as pa

    text, number = pa.string(), pa.int64()
    fields = [("id", text), ("env", text), ("instruction", text), ("style", text)]
    fields += [("kept", pa.bool_()), ("reject_reasons", text), ("doc_id", text)]
    fields += [("task_id", text), ("trajectory_id", text), ("i", number), ("j", number)]
    fields += [("policy", text), ("setup", text), ("steps", text), ("verdicts", text)]
    return pa.schema([*fields, ("messages", text)])


def _hf_rows(pairs: Iterable[Pair], space: ActionSpace, native_tools: bool) -> Iterator[dict]:
    for d, vs in pairs:
        row = lineage(d, vs)
        row["messages"] = json.dumps(
            example_to_chats(d.example, space, native_tools), ensure_ascii=False
        )
        for key in ("setup", "steps", "verdicts", "reject_reasons"):
            row[key] = json.dumps(row[key], sort_keys=True, ensure_ascii=False)
        yield row


def export_hf(
    out: Path,
    pairs: Iterable[Pair],
    space: ActionSpace,
    native_tools: bool,
    card_of: Callable[[], dict[str, Any]],
) -> int:
    """A `datasets` folder: data/train.parquet (lineage + chat messages, one row group per
    `ROW_GROUP` rows, written as they come) and a dataset card, `card_of()` once the rows are
    written; `datasets.load_dataset` reads it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError(
            "the hf export needs `pyarrow` (and `datasets` to read it): pip install 'lbi[export]'"
        ) from None
    schema = _hf_schema()
    (out / "data").mkdir(parents=True, exist_ok=True)
    final = out / "data" / "train.parquet"
    tmp = final.with_suffix(".parquet.tmp")
    n, batch = 0, []
    with pq.ParquetWriter(str(tmp), schema) as writer:
        for row in _hf_rows(pairs, space, native_tools):
            batch.append(row)
            if len(batch) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n, batch = n + len(batch), []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    tmp.replace(final)
    card = card_of()
    counts = "\n".join(f"- {k}: {v}" for k, v in card.get("counts", {}).items())
    config_yaml = card.get("config", "")
    (out / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.parquet\n---\n"
        f"# {card.get('name', 'lbi dataset')}\n\n"
        "Instruction–trajectory examples synthesized by lbi (learn-by-interact): tasks from the "
        "environment's documentation, agent rollouts, backward construction, committee filtering.\n\n"
        f"## Counts\n{counts}\n\n## Config\n```yaml\n{config_yaml}\n```\n"
    )
    return n
