"""`lbi export --format adp`: Agent Data Protocol trajectories that validate and read back to
the run's own records (docs/export.md)."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from lbi.cli import app
from lbi.config import Config
from lbi.envs.base import ActionSpace
from lbi.envs.tools.actions import format_tool_action
from lbi.pipeline.adp import ADP_VERSION, AdpTrajectory, adp_steps, example_to_adp, read_adp
from lbi.pipeline.filter import Decision
from lbi.run import RunContext
from lbi.types import Example, Step, Trajectory

FIELDS = ("observation", "reason", "thinking", "action", "next_observation", "reward", "error")


def _as_read(steps: list[Step]) -> list[dict]:
    return [{k: getattr(s, k) for k in FIELDS} for s in steps]


def test_adp_export_of_a_scripted_run_validates_and_reads_back_to_its_records(
    cfg: Config, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--set", f"run_root={cfg.run_root}", "--set", "embed.name=hash"]
    r = runner.invoke(
        app, ["synth", "--env", "toy", "--model", "scripted", "--run", "a", "--limit", "2", *base]
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "adp.jsonl"
    r = runner.invoke(app, ["export", "a", "-f", "adp", "--records", "both", "-o", str(out), *base])
    assert r.exit_code == 0, r.output

    ctx = RunContext("a", cfg)
    from lbi.pipeline.synth import kept_examples

    examples = {e.id: e for e in kept_examples(ctx)}
    trajectories = {t.id: t for t in ctx.store.all(Trajectory)}
    ctx.store.close()
    rows = read_adp(out)  # every line validates against the schema
    by_kind = {"example": [], "trajectory": []}
    for row in rows:
        by_kind[row.details["lbi_record"]].append(row)
    assert {r.id for r in by_kind["example"]} == set(examples) and len(examples) > 0
    assert {r.id for r in by_kind["trajectory"]} == {e.trajectory_id for e in examples.values()}
    assert f"wrote {len(rows)} ADP trajectories" in " ".join(r.output.split())

    for row in by_kind["example"]:
        ex = examples[row.id]
        instruction, steps = adp_steps(row)
        assert (instruction, steps) == (ex.instruction, _as_read(ex.steps))
        d = row.details
        assert (d["trajectory_id"], d["task_id"], d["i"], d["j"], d["kept"]) == (
            ex.trajectory_id,
            ex.task_id,
            ex.i,
            ex.j,
            True,
        )
    for row in by_kind["trajectory"]:
        t = trajectories[row.id]
        assert adp_steps(row) == (t.instruction, _as_read(t.steps))
        assert (row.details["success"], row.details["model"]) == (t.success, t.model)

    first = json.loads(out.read_text().splitlines()[0])
    assert first["schema_version"] == ADP_VERSION == "1.2.0"
    assert [c["class_"] for c in first["content"][:3]] == [
        "text_observation",
        "text_observation",
        "code_action",
    ]
    assert first["content"][0]["source"] == "user" and first["content"][2]["language"] == "text"
    assert "available_apis" not in first  # optional in ADP; lbi has no api.py to list

    r = runner.invoke(app, ["export", "a", "--records", "both", "-o", str(out), *base])
    assert r.exit_code != 0 and "--records is for --format adp" in r.output


def test_tool_calls_map_to_api_and_message_actions_and_read_back_exactly() -> None:
    lookup = format_tool_action("find_book", {"title": "Dune"})
    reply = format_tool_action("respond", {"content": "It is on shelf 3."})
    loose = '{"name": "find_book", "arguments": {"title": "Dune"}} '  # not canonical: kept as text
    steps = [
        Step(index=0, observation="o0", reason="look", action=lookup, next_observation="o1"),
        Step(index=1, observation="o1", reason="", action=loose, next_observation="o2", error=True),
        Step(index=2, observation="o2b", action=reply, next_observation="o3", reward=1.0),
    ]
    ex = Example(
        env="mcp",
        instruction="Where is Dune?",
        style="task",
        trajectory_id="t",
        task_id="k",
        i=0,
        j=2,
        policy="p",
        steps=steps,
    )
    space = ActionSpace(description="", tools=[{"type": "function"}], language="json")
    row = example_to_adp(Decision(example=ex, kept=True), [], space)
    classes = [c.class_ for c in row.content]
    assert classes == [
        "text_observation",  # the instruction
        "text_observation",  # o0
        "api_action",
        "text_observation",  # o1
        "code_action",
        "text_observation",  # o2; o2b differs from it, so it is written too
        "text_observation",
        "message_action",
        "text_observation",
    ]
    api = row.content[2]
    assert (api.function, api.kwargs, api.description) == ("find_book", {"title": "Dune"}, "look")
    again = AdpTrajectory.model_validate_json(row.model_dump_json())
    assert adp_steps(again) == (ex.instruction, _as_read(steps))


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r["content"][1].update(source="tool"),  # not one of ADP's sources
        lambda r: r["content"][2].update(colour="red"),  # ADP rejects extra fields
        lambda r: r["content"][2].update(class_="gui_action"),  # no such class
        lambda r: r.update(schema_version="9.9.9"),
        lambda r: r["content"][2].pop("description"),  # CodeAction's description is required
    ],
)
def test_the_schema_rejects_what_adp_rejects(damage) -> None:
    step = Step(index=0, observation="o0", action="get a", next_observation="1")
    ex = Example(
        env="toy",
        instruction="read a",
        style="task",
        trajectory_id="t",
        task_id="k",
        i=0,
        j=0,
        policy="p",
        steps=[step],
    )
    good = example_to_adp(Decision(example=ex, kept=True), [], ActionSpace(description=""))
    row = good.model_dump(mode="json")
    AdpTrajectory.model_validate(row)
    damage(row)
    with pytest.raises(ValidationError):
        AdpTrajectory.model_validate(row)
