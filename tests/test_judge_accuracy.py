"""Issue 29 item 4: the judge committee measured against gold (`lbi experiment judges`)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lbi.cli import app
from lbi.pipeline.filter import CRITERIA
from lbi.replicate.judges import Pair, changed_values, labelled_set, scores
from lbi.types import Example, Step, Trajectory, Verdict


def test_changed_values_changes_numbers_else_quoted_values() -> None:
    assert changed_values("pets heavier than 10 kg") == "pets heavier than 23 kg"
    assert changed_values('Type "Alice" into the box') == 'Type "ecilA" into the box'
    assert changed_values("List every student.") == "List every student."


def _traj(task: str, instruction: str, steps: int, success: bool = True) -> Trajectory:
    return Trajectory(
        task_id=task,
        env="toy",
        instruction=instruction,
        model="gold" if success else "floor",
        variant="gold" if success else "floor:empty",
        success=success,
        steps=[
            Step(index=i, observation=f"o{i}", action=f"a{i}", next_observation=f"r{i}")
            for i in range(steps)
        ],
    )


def test_the_labelled_set_has_each_kind_of_false_pair_with_distinct_ids() -> None:
    gold = [_traj("t1", "Count the 3 files.", 2), _traj("t2", "List the files.", 1)]
    failed = {"t1": _traj("t1", "Count the 3 files.", 1, success=False)}
    pairs = labelled_set(gold, failed)
    got = [(p.kind, p.example.instruction, len(p.example.steps)) for p in pairs]
    assert got == [
        ("true", "Count the 3 files.", 2),
        ("other-instruction", "List the files.", 2),
        ("cut", "Count the 3 files.", 1),
        ("changed-values", "Count the 9 files.", 2),
        ("failed", "Count the 3 files.", 1),
        ("true", "List the files.", 1),
        ("other-instruction", "Count the 3 files.", 1),
    ]
    assert len({p.example.id for p in pairs}) == len(pairs)
    assert [p.truth for p in pairs].count(True) == 2


def _pairs(kinds: str) -> list[Pair]:
    out = []
    for n, kind in enumerate(kinds.split()):
        step = Step(index=0, observation="o", action=f"act {n}", next_observation="r")
        ex = Example(
            env="toy",
            instruction=f"do {n}",
            style="task",
            trajectory_id=f"t{n}",
            task_id=f"t{n}",
            i=0,
            j=0,
            policy="gold",
            steps=[step],
        )
        out.append(Pair(ex, kind))
    return out


def _verdict(ex: Example, judge: str, ok: bool, bad: str = "achieves") -> Verdict:
    criteria = {c: ok or c != bad for c in CRITERIA}
    return Verdict(example_id=ex.id, judge=judge, criteria=criteria, accept=ok)


def test_each_setting_is_scored_against_the_truth() -> None:
    """Four true pairs, four false. Judge `lax` keeps all; `strict` rejects the false ones and
    one true one; `odd` rejects two false ones only. `all` follows `strict`; `majority` (two of
    three) keeps what `strict` or `odd` keeps together with `lax`."""
    pairs = _pairs("true true true true cut failed other-instruction changed-values")
    exs = [p.example for p in pairs]
    verdicts = [_verdict(e, "lax", True) for e in exs]
    verdicts += [
        _verdict(e, "strict", p.truth and n != 0)
        for n, (p, e) in enumerate(zip(pairs, exs, strict=True))
    ]
    verdicts += [_verdict(e, "odd", n not in (4, 5)) for n, e in enumerate(exs)]
    settings, per_criterion = scores(pairs, verdicts, ["lax", "strict", "odd"], 4000)
    got = {s.setting: (s.kept, s.true_kept, s.correct) for s in settings}
    assert got == {
        "rules only": (8, 4, 4),
        "judge lax": (8, 4, 4),
        "judge strict": (3, 3, 7),
        "judge odd": (6, 4, 6),
        "committee `all`": (3, 3, 7),
        "committee `majority`": (6, 4, 6),
    }
    strict = next(s for s in settings if s.setting == "judge strict")
    assert strict.precision[0] == 1.0 and strict.recall[0] == 0.75 and strict.accuracy[0] == 7 / 8
    assert strict.precision[1] < 1.0 and strict.recall[1] < 0.75 < strict.recall[2]
    assert strict.rejected_by_kind == {
        "true": (1, 4),
        "other-instruction": (1, 1),
        "cut": (1, 1),
        "changed-values": (1, 1),
        "failed": (1, 1),
    }
    # a criterion alone: `strict` failed only `achieves`, so `coherent` keeps everything
    crit = {s.setting: s.kept for s in per_criterion}
    assert crit["strict · achieves"] == 3 and crit["strict · coherent"] == 8


def test_the_command_writes_the_page_and_a_rerun_pays_nothing_twice(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    argv = [
        "experiment",
        "judges",
        "--env",
        "toy",
        "--model",
        f"scripted:log={log}",
        "--out",
        str(tmp_path),
        "--set",
        f"run_root={tmp_path / 'runs'}",
        "--set",
        "embed.name=hash",
    ]
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 0, first.output
    page = next(tmp_path.glob("judges-toy-toy-5.md")).read_text()
    # The scripted judge accepts everything: every setting keeps all 22 pairs, 5 of them true.
    assert "Pairs: true 5, other-instruction 5, cut 5, changed-values 2, failed 5." in page
    assert "| committee `all` | 22/22 | 22.7 [10.1, 43.4] | 100.0 [56.6, 100.0] |" in page
    calls = log.read_text().splitlines()
    # 22 pairs in batches of 8, yes/no and graded; the graded judge gives every criterion 5
    assert len(calls) == 6 and page.count("3 judge calls") == 2
    assert "| graded, mean ≥ 5 | 22/22 |" in page
    again = CliRunner().invoke(app, argv)
    assert again.exit_code == 0 and "committee `all`: accuracy 22.7%" in again.output
    assert log.read_text().splitlines() == calls


def test_the_graded_committee_keeps_what_every_criterions_mean_score_reaches() -> None:
    """Two judges' 1-5 scores: a pair is kept when each criterion's mean reaches the threshold;
    a judge with no graded verdict counts as 1."""
    pairs = _pairs("true cut failed")
    a, b, c = (p.example for p in pairs)

    def graded(ex: Example, judge: str, achieves: int) -> Verdict:
        marks = {k: 5 for k in CRITERIA} | {"achieves": achieves}
        return Verdict(
            example_id=ex.id, judge=judge, criteria={}, accept=achieves >= 4, scores=marks
        )

    verdicts = [graded(a, "x", 5), graded(a, "y", 4), graded(b, "x", 5), graded(b, "y", 2)]
    verdicts += [graded(c, "x", 5)]  # `y` gave no verdict on c
    settings, _ = scores(pairs, [], ["x", "y"], 4000, verdicts)
    got = {s.setting: s.kept for s in settings if s.setting.startswith("graded")}
    assert got == {"graded, mean ≥ 3": 3, "graded, mean ≥ 4": 1, "graded, mean ≥ 5": 0}


def test_a_graded_answer_is_read_leniently_and_a_missing_score_is_1() -> None:
    from lbi.pipeline.filter import parse_verdicts

    (ex,) = (p.example for p in _pairs("true"))
    answer = {
        "verdicts": [
            {
                "example": 1,
                "achieves": {"score": "4", "reason": "r"},
                "coherent": {"score": 2.4},
                "natural": 9,
                "reasonable": True,
            }
        ]
    }
    (v,) = parse_verdicts(answer, [ex], "j", graded=True)
    assert v.scores == {"achieves": 4, "coherent": 2, "natural": 5, "reasonable": 1}
    assert v.criteria == {"achieves": True, "coherent": False, "natural": True, "reasonable": False}
    assert not v.accept


def test_a_page_counts_only_its_own_judges_calls_in_a_run_shared_with_another(
    tmp_path: Path,
) -> None:
    """Pages made with the same `--name` share one judged run (one judge's page, then the
    committee's): each page's cost is its judges' calls, per example they judged."""
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    base = ["experiment", "judges", "--env", "toy", "--model", "scripted", "--name", "shared"]
    base += ["--out", str(tmp_path), "--set", f"run_root={tmp_path / 'runs'}"]
    base += ["--set", "embed.name=hash"]
    for log in logs:
        judges = json.dumps([f"scripted:name={log.stem},log={log}"])  # `--judges` splits at commas
        r = CliRunner().invoke(app, [*base, "--set", f"synth.judges={judges}", "--page", log.stem])
        assert r.exit_code == 0, r.output
    assert [len(log.read_text().splitlines()) for log in logs] == [6, 6]  # 3 yes/no, 3 graded
    for log in logs:
        page = (tmp_path / f"{log.stem}.md").read_text()
        assert page.count("3 judge calls") == 2, page  # not the 6 the shared run made in all
