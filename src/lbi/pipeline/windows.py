"""Which sub-trajectories steps[i..j] (both ends inclusive) a backward policy labels.

- `all`: every window, n(n+1)/2 for n steps — the paper's recipe.
- `batched`: every window of at most `max_window` steps that passes the rule filters.
- `boundaries`: windows cut at natural boundaries — maximal runs of error-free steps, and
  unions of consecutive runs (which keep the error and recovery between them) — within
  `max_window` steps.
"""

from __future__ import annotations

from lbi.pipeline.rules import rule_failures
from lbi.types import Step, Trajectory

Window = tuple[int, int]


def all_windows(n: int) -> list[Window]:
    return [(i, j) for i in range(n) for j in range(i, n)]


def _segments(steps: list[Step]) -> list[Window]:
    segs: list[Window] = []
    start = None
    for k, s in enumerate(steps):
        if s.error:
            if start is not None:
                segs.append((start, k - 1))
            start = None
        elif start is None:
            start = k
    if start is not None:
        segs.append((start, len(steps) - 1))
    return segs


def boundary_windows(steps: list[Step], max_window: int) -> list[Window]:
    segs = _segments(steps)
    out: set[Window] = set()
    for a in range(len(segs)):
        for b in range(a, len(segs)):
            i, j = segs[a][0], segs[b][1]
            if j - i + 1 > max_window:
                break
            out.add((i, j))
        # A long segment still yields its prefixes of max_window steps.
        i, j = segs[a]
        if j - i + 1 > max_window:
            out.update((k, k + max_window - 1) for k in range(i, j - max_window + 2))
    return sorted(out)


def select_windows(traj: Trajectory, policy: str, max_window: int, max_chars: int) -> list[Window]:
    n = len(traj.steps)
    if policy == "all":
        return all_windows(n)
    if policy == "boundaries":
        cand = boundary_windows(traj.steps, max_window)
    elif policy == "batched":
        cand = [(i, j) for i, j in all_windows(n) if j - i + 1 <= max_window]
    else:
        raise ValueError(f"unknown backward policy {policy!r}; use all, batched or boundaries")
    return [(i, j) for i, j in cand if not rule_failures(traj.steps[i : j + 1], max_chars)]
