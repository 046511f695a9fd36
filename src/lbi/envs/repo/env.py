"""The `repo` environment: a Python repository as a sandboxed shell world.

Options (`env_options.repo.*`): `path` (a git repository or a folder; default: the shipped
`wordstats` demo), `setup` (a command run once per repository state, with network, that prepares
`/env`, e.g. `python -m venv /env && /env/bin/pip install -e .`; episodes see `/env` read-only),
`test_cmd` (default `python -m pytest -q`), `pythonpath`, `timeout_s`, `memory_mb` (the episode's
memory: per process, and for the whole episode where a cgroup can be made), `nproc`, `tmp_mb`
(its /tmp), `workspace_mb` (past this the episode ends), `max_chars`, `bugs_file` (a suite built
by `lbi repo bugs`), `data_dir` (PyPI sdists).

Actions, one per step: a shell command (run in the sandbox at /repo); an edit as JSON,
`{"edit": PATH, "old": EXACT_SNIPPET, "new": TEXT}` or `{"create": PATH, "content": TEXT}`; and
`submit`, which scores tasks that name FAIL_TO_PASS/PASS_TO_PASS tests (scoring.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.repo import scoring, suite
from lbi.envs.repo.confine import Cgroup, UidLease
from lbi.envs.repo.docs import repo_docs
from lbi.envs.repo.projects import default_data_dir
from lbi.envs.repo.sandbox import SANDBOX_UID, Limits, Sandbox, SandboxError
from lbi.envs.repo.setup_env import prepare_env
from lbi.envs.repo.sources import Sources
from lbi.envs.repo.workspace import copy_workspace, digest, remove_tree, tree_bytes
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config

_OPTIONS = {"path", "setup", "test_cmd", "pythonpath", "timeout_s", "memory_mb", "nproc"}
_OPTIONS |= {"max_chars", "bugs_file", "data_dir", "name", "tmp_mb", "workspace_mb"}
_PLUGIN = Path(__file__).with_name("pytest_report.py")
_EDIT = """import base64, json, os, sys
a = json.loads(base64.b64decode(sys.argv[1]))
path = a.get("edit") or a.get("create")
if not isinstance(path, str) or not path:
    sys.exit("edit: name the file in \\"edit\\" or \\"create\\"")
if "create" in a:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    open(path, "w").write(str(a.get("content", "")))
    print(f"Created {path} ({len(str(a.get('content', '')).splitlines())} lines).")
    sys.exit(0)
old, new = a.get("old"), a.get("new", "")
if not isinstance(old, str) or not old:
    sys.exit("edit: give the exact text to replace in \\"old\\"")
try:
    text = open(path).read()
except OSError as e:
    sys.exit(f"edit: cannot read {path}: {e.strerror}")
n = text.count(old)
if n != 1:
    sys.exit(f"edit: \\"old\\" occurs {n} times in {path}; it must occur exactly once")
open(path, "w").write(text.replace(old, str(new)))
print(f"Edited {path}: replaced {len(old.splitlines())} lines with {len(str(new).splitlines())}.")
"""


class RepoEnv:
    name = "repo"
    max_concurrency = 4

    def __init__(self, sources: Sources, opts: dict[str, Any]) -> None:
        self.sources = sources
        self.opts = opts
        self.test_cmd = str(opts.get("test_cmd") or "python -m pytest -q")
        self.limits = Limits(
            timeout_s=float(opts.get("timeout_s", 60)),
            memory_mb=int(opts.get("memory_mb", 2048)),
            nproc=int(opts.get("nproc", 128)),
            output_chars=int(opts.get("max_chars", 8000)),
            tmp_mb=int(opts.get("tmp_mb", 512)),
        )
        self.workspace_mb = int(opts.get("workspace_mb", 1024))
        self._tmp: Path | None = None
        self._sandbox: Sandbox | None = None
        self._task: Task | None = None
        self._snapshot: Path | None = None
        self._done = False
        self._lease: UidLease | None = None
        self._cgroup: Cgroup | None = None

    def docs(self) -> list[Doc]:
        name = self.sources.default
        return repo_docs(self.name, self.sources.snapshot(name), name)

    def action_space(self) -> ActionSpace:
        return ActionSpace(
            description=(
                "One action per step, on the repository at /repo (a sandbox: no network, only "
                "/repo and /tmp writable):\n"
                "- a shell command, e.g. `grep -rn clamp .` or `python -m pytest -q tests`; you see "
                "its exit code and output (long output is cut);\n"
                '- an edit as one line of JSON: `{"edit": "path/file.py", "old": "exact text", '
                '"new": "replacement"}` (the old text must occur exactly once; use \\n for new '
                'lines), or `{"create": "path/file.py", "content": "..."}`;\n'
                "- `submit` when the repository does what the task asks; the episode ends."
            ),
            examples=["ls", "git diff", "python -m pytest -q -x", "submit"],
            finish="submit",
        )

    # -- episodes ------------------------------------------------------------------------------
    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self._close_episode()
        project = str(task.setup.get("project") or self.sources.default)
        snap = self.sources.snapshot(project)
        self._tmp = Path(tempfile.mkdtemp(prefix="lbi-repo-"))
        self._tmp.chmod(0o755)
        uid = SANDBOX_UID
        if os.geteuid() == 0:
            self._lease = UidLease()
            uid = self._lease.uid
        self._cgroup = Cgroup.make(self.limits.memory_mb, self.limits.nproc)
        ws = copy_workspace(snap, self._tmp / "repo", patch=task.setup.get("patch"), uid=uid)
        ro = {}
        if setup := self.opts.get("setup"):
            ro["/env"] = prepare_env(snap, str(setup), self.sources.cache_root, self.limits)
        pp = ":".join(f"/repo/{p}".rstrip("/.") for p in self.sources.pythonpath(project))
        env = {"PYTHONPATH": pp, **self.sources.test_env(project)}
        self._sandbox = Sandbox(
            ws, limits=self.limits, ro_binds=ro, env=env, uid=uid, cgroup=self._cgroup
        )
        self._task, self._snapshot, self._done = task, snap, False
        listing = "  ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in ws.iterdir()))
        obs = (
            f"Repository {project} at /repo (your private copy; tests: `{self.test_cmd}`).\n"
            f"Top level: {listing}\n"
            "Send one shell command, one JSON edit, or `submit` per step."
        )
        return obs, {"project": project}

    def step(self, action: str) -> StepResult:
        if self._sandbox is None or self._done:
            return self._error("the episode has ended; call reset" if self._done else "reset first")
        text = (action or "").strip()
        if not text or "\x00" in text:
            return self._error("empty action or a NUL byte: send a command, a JSON edit or submit")
        if text.lower() == "submit":
            return self._submit()
        if text.startswith("{"):
            try:
                edit = json.loads(text)
            except json.JSONDecodeError as e:
                return self._error(f"the edit is not valid JSON ({e})")
            if not isinstance(edit, dict):
                return self._error("an edit is a JSON object")
            payload = base64.b64encode(json.dumps(edit).encode()).decode()
            result = self._sandbox.run(f"python -c {_quote(_EDIT)} {payload}")
            if result.exit_code != 0:
                return self._over_size() or self._error(result.stderr.strip() or result.render())
            return self._over_size() or (result.stdout.strip(), 0.0, False, False, {"error": False})
        try:
            result = self._sandbox.run(text)
        except SandboxError as e:
            return self._error(str(e))
        info = {"error": False, "exit_code": result.exit_code, "timed_out": result.timed_out}
        return self._over_size() or (result.render(), 0.0, False, False, info)

    def _over_size(self) -> StepResult | None:
        """End the episode when its files outgrow `workspace_mb` (per-file size is capped by
        the sandbox; this caps the total, checked after every step)."""
        assert self._sandbox is not None
        used = tree_bytes(self._sandbox.workspace) >> 20
        if used <= self.workspace_mb:
            return None
        self._done = True
        message = f"Error: the repository grew to {used} MB, over the {self.workspace_mb} MB limit"
        return message + "; the episode ends.", 0.0, False, True, {"error": True}

    def _submit(self) -> StepResult:
        assert self._sandbox is not None and self._snapshot is not None and self._task is not None
        self._done = True
        gold = self._task.gold
        f2p, p2p = list(gold.get("fail_to_pass") or []), list(gold.get("pass_to_pass") or [])
        if not f2p:
            return "Submitted.", 0.0, True, False, {"error": False, "correct": None}
        files = sorted({t.split("::")[0] for t in [*f2p, *p2p]} | set(gold.get("test_files", [])))
        statuses, carried = self._score(files)
        ok = scoring.success(statuses, f2p, p2p)
        failing = [t for t in [*f2p, *p2p] if statuses.get(t) != "PASSED"]
        obs = "Submitted: all tests pass." if ok else f"Submitted: {len(failing)} tests fail."
        info = {"error": False, "correct": ok, "failing": failing[:20], "scored_changes": carried}
        return obs, float(ok), True, False, info

    def _score(self, files: list[str]) -> tuple[dict[str, str], list[str]]:
        """Run the task's test files on a fresh copy of the starting state plus the agent's
        source changes (scoring.py), reading outcomes from the plug-in's report file. Returns
        the outcomes and the files carried over (the changes that were scored)."""
        assert self._sandbox is not None and self._snapshot is not None and self._tmp is not None
        assert self._task is not None
        box, work = self._sandbox, self._tmp / "score"
        work.mkdir()
        fresh = copy_workspace(
            self._snapshot, work / "repo", patch=self._task.setup.get("patch"), uid=box.uid
        )
        carried = scoring.overlay(box.workspace, fresh, set(files))
        plugin, out = work / "plugin", work / "out"
        plugin.mkdir()
        shutil.copy(_PLUGIN, plugin / "lbi_pytest_report.py")
        out.mkdir()
        if os.geteuid() == 0:
            os.chown(out, box.uid, box.uid)
        pp = ":".join(p for p in ["/lbi-plugin", box.env.get("PYTHONPATH", "")] if p)
        env = {**box.env, "PYTHONPATH": pp, "PYTHONSAFEPATH": "1", "PYTHONNOUSERSITE": "1"}
        env["LBI_PYTEST_REPORT"] = "/lbi-out/report.jsonl"
        judge = Sandbox(
            fresh,
            limits=Limits(timeout_s=max(self.limits.timeout_s, 300), output_chars=1 << 16),
            ro_binds={**box.ro_binds, "/lbi-plugin": plugin},
            binds={"/lbi-out": out},
            env=env,
            uid=box.uid,
            cgroup=box.cgroup,
        )
        judge.run(scoring.test_command(self.test_cmd, files) + " -p lbi_pytest_report")
        return scoring.read_report(out / "report.jsonl"), carried

    def _error(self, message: str) -> StepResult:
        return f"Error: {message}", 0.0, False, False, {"error": True}

    def state_digest(self) -> str:
        if self._sandbox is None:
            raise EnvError("state_digest() needs an episode: call reset first")
        return digest(self._sandbox.workspace)

    def _close_episode(self) -> None:
        if self._cgroup is not None:
            self._cgroup.close()
        if self._tmp is not None:
            remove_tree(self._tmp)
        if self._lease is not None:
            self._lease.release()
        self._tmp = self._sandbox = self._cgroup = self._lease = None

    def close(self) -> None:
        self._close_episode()

    # -- suites --------------------------------------------------------------------------------
    def suites(self) -> list[str]:
        return [suite.SUITE, suite.LOCAL]

    def load_suite(self, name: str) -> list[Task]:
        return suite.load(name, self.sources, self.opts.get("bugs_file"))

    def sample_tasks(self) -> list[Task]:
        tasks = suite.sample(self.sources, self.opts.get("bugs_file"))
        if tasks:
            return tasks
        return [
            Task(
                env=self.name,
                instruction="Run the repository's tests and report how many pass.",
                setup={"project": self.sources.default},
                origin="user",
                reference=[self.test_cmd, "submit"],
                name="sample-run-tests",
            )
        ]


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


@register_env(
    "repo", "any Python repository in a bubblewrap sandbox (options path, setup, test_cmd)"
)
def make_repo_env(arg: str, config: Config) -> RepoEnv:
    opts = dict(config.env_options.get("repo", {}))
    if unknown := sorted(set(opts) - _OPTIONS):
        raise EnvError(f"unknown env_options.repo keys {unknown}; known: {sorted(_OPTIONS)}")
    root = Path(config.run_root)
    data_dir = Path(opts["data_dir"]) if opts.get("data_dir") else default_data_dir()
    try:
        sources = Sources(opts, root / ".cache" / "repo", data_dir)
    except (OSError, ValueError) as e:
        raise EnvError(f"repo: {e}") from None
    return RepoEnv(sources, opts)
