from hypothesis import given, settings
from hypothesis import strategies as st

from lbi.pipeline.rules import rule_failures
from lbi.pipeline.windows import all_windows, boundary_windows, select_windows
from lbi.types import Step, Trajectory


def _traj(actions: list[str], errors: list[bool] | None = None) -> Trajectory:
    errors = errors or [False] * len(actions)
    t = Trajectory(task_id="t", env="toy", instruction="i", model="m")
    for k, (a, e) in enumerate(zip(actions, errors, strict=True)):
        t.steps.append(
            Step(index=k, observation=f"o{k}", action=a, next_observation=f"o{k + 1}", error=e)
        )
    return t


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=40))
def test_all_yields_n_n_plus_1_over_2_inclusive_windows(n: int) -> None:
    windows = all_windows(n)
    assert len(windows) == n * (n + 1) // 2 == len(set(windows))
    assert all(0 <= i <= j < n for i, j in windows)
    assert select_windows(_traj([f"a{k}" for k in range(n)]), "all", 3, 10**9) == windows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=25), st.integers(min_value=1, max_value=8))
def test_boundary_windows_start_and_end_on_good_steps(errors: list[bool], max_window: int) -> None:
    t = _traj([f"a{k}" for k in range(len(errors))], errors)
    windows = boundary_windows(t.steps, max_window)
    for i, j in windows:
        assert j - i + 1 <= max_window
        assert not t.steps[i].error and not t.steps[j].error  # errors may sit inside (recovery)
    # every error-free step is covered by some window
    assert {k for i, j in windows for k in range(i, j + 1)} >= {
        k for k, e in enumerate(errors) if not e
    }


def test_batched_drops_rule_failures_and_long_windows() -> None:
    t = _traj(["list", "list", "get a", "set a 1"])
    t.steps[1].observation = t.steps[0].observation  # consecutive duplicate of step 0
    got = select_windows(t, "batched", 2, 10**9)
    assert (0, 1) not in got and (0, 0) in got and all(j - i + 1 <= 2 for i, j in got)


def test_rules() -> None:
    dup = _traj(["a", "a"])
    dup.steps[1].observation = dup.steps[0].observation
    assert "consecutive-duplicates" in rule_failures(dup.steps, 10**6)
    assert "only-errors" in rule_failures(_traj(["x", "y"], [True, True]).steps, 10**6)
    assert "too-long" in rule_failures(_traj(["x" * 50]).steps, 20)
    assert "empty" in rule_failures([], 10)
    assert rule_failures(_traj(["a", "b"]).steps, 10**6) == []
