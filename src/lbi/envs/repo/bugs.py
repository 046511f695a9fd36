"""Build a bug suite from a repository, the SWE-smith way: mutate, run the tests, keep real bugs.

A mutation is kept only when, in the sandbox, at least one test that passes on the pristine copy
fails and every other such test still passes. FAIL_TO_PASS are the tests it breaks; PASS_TO_PASS
the other passing tests of the same test files (SWE-bench runs only those files). The instruction
is written from the symptom: the failing test's id and its `E` lines (assertion or exception),
never the patch. Same repository state, seed and limits: the same instances, with the same ids.

    python -m lbi.envs.repo.bugs --project inflection --out bugs.jsonl
    python -m lbi.envs.repo.bugs --path ~/my/repo --test-cmd "python -m pytest -q" --out bugs.jsonl
    lbi repo bugs --path ~/my/repo --test-cmd "python -m pytest -q"   # the same, from the CLI
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lbi.envs.repo import scoring
from lbi.envs.repo.docs import _is_test
from lbi.envs.repo.mutate import Mutation, candidates
from lbi.envs.repo.projects import PYPI, default_data_dir
from lbi.envs.repo.sandbox import Limits, Sandbox
from lbi.envs.repo.sources import DEMO_NAME, Sources
from lbi.envs.repo.workspace import copy_workspace, iter_files, remove_tree
from lbi.types import content_id

LIMITS = Limits(timeout_s=300, output_chars=8 << 20)


def run_tests(snapshot: Path, env: dict[str, str], test_cmd: str, patch: str | None) -> str:
    """Stdout of the whole suite (`-rA`, short tracebacks) on a copy of `snapshot` + `patch`."""
    tmp = Path(tempfile.mkdtemp(prefix="lbi-bugs-"))
    tmp.chmod(0o755)
    try:
        ws = copy_workspace(snapshot, tmp / "repo", patch=patch)
        cmd = f"{test_cmd} -rA --tb=short -p no:cacheprovider -o addopts="
        return Sandbox(ws, limits=LIMITS, env=env).run(cmd).stdout
    finally:
        remove_tree(tmp)


def diff(path: str, a: list[str], b: list[str]) -> str:
    return "".join(difflib.unified_diff(a, b, f"a/{path}", f"b/{path}"))


def _unique_edit(lines: list[str], new_lines: list[str], i: int) -> tuple[str, str]:
    """The smallest window around line i whose text occurs once in `lines` (exact-snippet edit)."""
    text = "".join(lines)
    lo, hi = i, i + 1
    while text.count("".join(lines[lo:hi])) > 1 and (lo > 0 or hi < len(lines)):
        lo, hi = max(0, lo - 1), min(len(lines), hi + 1)
    return "".join(lines[lo:hi]), "".join(new_lines[lo:hi])


def symptom(output: str, test_id: str) -> str:
    """The `E` lines of `test_id`'s failure section, at most 12."""
    short = test_id.split("::")[-1]
    blocks = re.split(r"^_{3,} (.+?) _{3,}$", output, flags=re.MULTILINE)
    for title, body in zip(blocks[1::2], blocks[2::2], strict=False):
        if title.split(".")[-1] == short or title.endswith(short):
            err = [ln[1:].strip() for ln in body.splitlines() if ln.startswith("E ")]
            return "\n".join(err[:12])
    return ""


def instruction(f2p: list[str], text: str) -> str:
    more = f" (and {len(f2p) - 1} other test{'s' if len(f2p) > 2 else ''})" if len(f2p) > 1 else ""
    shown = f"\n\n```\n{text}\n```" if text else ""
    return (
        f"After a recent change, the test `{f2p[0]}`{more} fails:{shown}\n\n"
        "Find the bug in the library code and fix it so the failing tests pass again without "
        "breaking any other test. Do not change the tests."
    )


def build(
    sources: Sources, project: str, test_cmd: str, count: int, seed: int = 0, tries: int = 60
) -> list[dict[str, Any]]:
    snap = sources.snapshot(project)
    pp = ":".join(f"/repo/{p}".rstrip("/.") for p in sources.pythonpath(project))
    env = {"PYTHONPATH": pp, **sources.test_env(project)}
    base = scoring.parse_rA(run_tests(snap, env, test_cmd, None))
    passing = {t for t, s in base.items() if s == "PASSED"}
    if not passing:
        raise RuntimeError(f"no test passes on pristine {project}; check --test-cmd")
    cands: list[Mutation] = []
    for f in iter_files(snap):
        rel = f.relative_to(snap)
        skip = rel.parts[0] in ("docs", "examples") or rel.name in ("setup.py", "noxfile.py")
        if f.suffix == ".py" and not _is_test(rel) and not skip:
            cands += candidates(str(rel), f.read_text(encoding="utf-8", errors="replace"))
    random.Random(f"{seed}:{project}").shuffle(cands)
    out: list[dict[str, Any]] = []
    for m in cands[:tries]:
        if len(out) >= count:
            break
        lines = (snap / m.path).read_text().splitlines(keepends=True)
        bad = list(lines)
        bad[m.line - 1] = m.after + ("\n" if lines[m.line - 1].endswith("\n") else "")
        patch = diff(m.path, lines, bad)
        output = run_tests(snap, env, test_cmd, patch)
        now = scoring.parse_rA(output)
        f2p = sorted(t for t in passing if now.get(t) != "PASSED")
        if not f2p or any(now.get(t) != "PASSED" for t in passing - set(f2p)):
            continue
        files = sorted({t.split("::")[0] for t in f2p})
        p2p = sorted(t for t in passing - set(f2p) if t.split("::")[0] in files)
        old, new = _unique_edit(bad, lines, m.line - 1)
        gold_patch = diff(m.path, bad, lines)
        out.append(
            {
                "name": f"{project}-{m.kind}-{content_id(patch)[:8]}",
                "instruction": instruction(f2p, symptom(output, f2p[0])),
                "setup": {"project": project, "patch": patch},
                "gold": {
                    "fail_to_pass": f2p,
                    "pass_to_pass": p2p,
                    "test_files": files,
                    "patch": gold_patch,
                },
                "reference": [json.dumps({"edit": m.path, "old": old, "new": new}), "submit"],
            }
        )
        print(f"  kept {out[-1]['name']}: {len(f2p)} fail, {len(p2p)} pass", file=sys.stderr)
    return out


def build_suite(
    out: Path,
    run_root: Path,
    path: str | None = None,
    projects: list[str] | None = None,
    test_cmd: str = "python -m pytest -q",
    count: int = 11,
    tries: int = 60,
    seed: int = 0,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """Build instances for the repository at `path` (or the named `projects`) and write them to
    `out` as JSON lines (atomically); returns them."""
    opts = {"path": path, "name": name} if path else {}
    sources = Sources(opts, run_root / ".cache" / "repo", default_data_dir())
    names = [sources.default] if path else (projects or sorted(PYPI))
    rows: list[dict[str, Any]] = []
    for p in names:
        print(f"{p}:", file=sys.stderr)
        rows += build(sources, p, test_cmd, count, seed, tries)
    tmp = Path(f"{out}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    shutil.move(tmp, out)
    print(f"wrote {len(rows)} instances to {out}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build a SWE-style bug suite from a repository.")
    ap.add_argument("--path", help="a git repository or folder (default: the --project names)")
    ap.add_argument("--project", action="append", help=f"{DEMO_NAME} or one of {', '.join(PYPI)}")
    ap.add_argument("--test-cmd", default="python -m pytest -q")
    ap.add_argument("--count", type=int, default=11, help="instances per project")
    ap.add_argument("--tries", type=int, default=60, help="mutations tried per project at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-root", default="runs")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    rows = build_suite(
        Path(a.out), Path(a.run_root), a.path, a.project, a.test_cmd, a.count, a.tries, a.seed
    )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
