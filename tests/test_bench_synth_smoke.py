"""Smoke test of bench/synth_cost.py: its committee judges content, and the comparison's counts hold."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lbi.pipeline.backward import labels_schema
from lbi.pipeline.tasks import tasks_schema
from lbi.testing.fake_answers import example_for, react_answer
from lbi.testing.synth_doubles import committee, describe

BENCH = Path(__file__).resolve().parents[1] / "bench" / "synth_cost.py"


def _bench() -> ModuleType:
    if "synth_cost" in sys.modules:
        return sys.modules["synth_cost"]
    spec = importlib.util.spec_from_file_location("synth_cost", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synth_cost"] = module
    spec.loader.exec_module(module)
    return module


def test_committee_rejects_waste_and_unrecovered_errors() -> None:
    clean = [("set a 1", "OK: a = 1"), ("get a", "a = 1")]
    recovered = [("get m", "Error: no key 'm'."), ("set m 2", "OK: m = 2")]
    unrecovered = [("delete z", "Error: no key 'z'."), ("set a 1", "OK: a = 1")]
    repeated = [("get a", "a = 1"), ("get a", "a = 1")]
    undo = [("set t 1", "OK: t = 1"), ("delete t", "OK: deleted t")]
    for steps, failing in [
        (clean, set()),
        (recovered, set()),
        (unrecovered, {"coherent"}),
        (repeated, {"reasonable"}),
        (undo, {"reasonable"}),
    ]:
        task, _ = describe(steps)
        verdict = committee(task, steps)
        assert {c for c, (ok, _) in verdict.items() if not ok} == failing, (steps, verdict)
    # An instruction that claims more than the window shows does not achieve it.
    assert not committee("Set a to 1, then set b to 2.", clean)["achieves"][0]
    assert not committee("Submit the store as it is.", clean)["natural"][0]


def test_all_vs_default_on_the_same_trajectories(tmp_path: Path) -> None:
    b = _bench()
    res = asyncio.run(b.compare_policies(tmp_path, n=2, seed=3, sweep=False))
    steps = [len(t.steps) for t in res["trajectories"]]
    assert len(steps) == 2 and all(10 <= n <= 15 for n in steps)
    paper, default = res["all"], res["default"]
    # `all`: one labelling call per window, n(n+1)/2 windows, 2 styles; one judge call each.
    windows = sum(n * (n + 1) // 2 for n in steps)
    assert paper.calls["backward"] == windows and paper.raw == 2 * windows
    assert paper.calls["filter"] == paper.judged
    # The committee decides on content: it neither accepts nor rejects everything.
    assert 0 < len(paper.kept) < paper.judged
    # The default keeps a subset of the windows (max_window 8) with fewer calls per kept example.
    assert default.kept and default.per_kept(default.total_calls) < paper.per_kept(
        paper.total_calls
    )
    assert default.kept == {k for k in paper.kept if k[2] - k[1] < 8}
    lines = "\n".join(b.cost_lines(res, b.COMMITTEE))
    assert "| `all` (the paper)" in lines and "overlap" in lines


def test_fake_server_answers_lbi_prompts_usefully() -> None:
    prompt = '<excerpt id="1">\na\n</excerpt>\n<excerpt id="2">\nb\n</excerpt>'
    labels = example_for(labels_schema(2), prompt, items=2, numbered=True)["labels"]
    assert [x["window"] for x in labels] == [1, 2] and labels[0]["task"] != labels[1]["task"]
    assert len(example_for(tasks_schema(3), "doc", items=3)["tasks"]) == 3
    system = {"role": "system", "content": "Answer: REASON: ... ACTION: ..."}
    history = {"role": "user", "content": "OBJECTIVE: o\nHISTORY:\n1. ACTION: list\n"}
    answer = react_answer([system, history], ["list", "get a", "submit"])
    assert answer is not None and answer.endswith("ACTION: get a")
    assert react_answer([{"role": "system", "content": "JSON only"}, history], ["list"]) is None
