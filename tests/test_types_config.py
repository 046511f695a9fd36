from pathlib import Path

import pytest

from lbi.config import ConfigError, load_config
from lbi.types import Doc, Example, Step, Task, Trajectory, content_id


def test_content_ids_are_stable_and_content_sensitive() -> None:
    a = Task(env="toy", instruction="Store 1 under a.")
    b = Task(env="toy", instruction="Store 1 under a.")
    c = Task(env="toy", instruction="Store 2 under a.")
    assert a.id == b.id and a.id != c.id and len(a.id) == 16
    assert Doc(env="toy", source="x", text="t").id != Doc(env="toy", source="y", text="t").id
    assert content_id({"b": 1, "a": 2}) == content_id({"a": 2, "b": 1})


def test_trajectory_id_ignores_steps_but_not_sample() -> None:
    t1 = Trajectory(task_id="t", env="toy", instruction="i", model="m")
    t1.steps.append(Step(index=0, observation="o", action="a", next_observation="n"))
    t2 = Trajectory(task_id="t", env="toy", instruction="i", model="m")
    assert t1.id == t2.id
    assert Trajectory(task_id="t", env="toy", instruction="i", model="m", sample=1).id != t1.id


def test_example_round_trips_through_json() -> None:
    step = Step(index=0, observation="o", action="a", next_observation="n")
    ex = Example(
        env="toy",
        instruction="do",
        style="task",
        trajectory_id="t",
        task_id="k",
        i=0,
        j=0,
        policy="all",
        steps=[step],
    )
    back = Example.model_validate_json(ex.model_dump_json())
    assert back == ex and back.id == ex.id


def test_config_defaults_overrides_and_file(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            "synth.max_steps=3",
            "models.openai.base_url=http://127.0.0.1:9/v1",
            "synth.styles=[task]",
        ],
    )
    assert cfg.synth.max_steps == 3 and cfg.synth.styles == ["task"]
    assert cfg.models.openai.base_url == "http://127.0.0.1:9/v1"
    assert cfg.model == "local" and cfg.embed.name == "minilm"  # offline defaults
    f = tmp_path / "c.yaml"
    f.write_text("model: scripted\nsynth:\n  tasks_per_chunk: 5\n")
    cfg = load_config(f, ["synth.tasks_per_chunk=7"])
    assert cfg.model == "scripted" and cfg.synth.tasks_per_chunk == 7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["synth.max_steps=many"], "synth.max_steps"),
        (["nonsense.key=1"], "nonsense"),
        (["no-equals-sign"], "key=value"),
    ],
)
def test_bad_config_is_one_clear_error(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_or_bad_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
