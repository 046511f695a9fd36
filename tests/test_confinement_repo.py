"""Confinement of the `repo` environment: attacks from a hostile repository or agent (issue 31).

Each test is an attack that worked before its fix: git configuration planted in the repository
(finding 1), reward hacking through conftest.py / sitecustomize.py (5), one episode exhausting
the host or its neighbours (6), sdist code run before its hash check (10), and a venv hidden by
the sandbox's /tmp (12).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.envs.base import make_env
from lbi.envs.repo import suite
from lbi.envs.repo.git_safe import export_head
from lbi.envs.repo.sandbox import Sandbox
from lbi.envs.repo.workspace import apply_patch, take_snapshot
from lbi.types import Task

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def _hostile_config(mark: Path) -> str:
    """A git config whose every program-naming key writes `mark` when git runs it."""
    cmd = f"touch {mark}; false"
    return (
        f'[core]\n\tfsmonitor = "{cmd}"\n\thooksPath = hooks\n\tpager = "{cmd}"\n'
        f'[filter "evil"]\n\tsmudge = "{cmd}"\n\tclean = "{cmd}"\n\trequired = true\n'
        f'[diff]\n\texternal = "{cmd}"\n'
    )


def _plant(root: Path, mark: Path) -> None:
    """The repository's own files: a .gitconfig, a hooks folder, and attributes naming a filter."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pkg.py").write_text("def add(a, b):\n    return a + b\n")
    (root / ".gitconfig").write_text(_hostile_config(mark))
    (root / ".gitattributes").write_text("* filter=evil\n")
    hooks = root / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("pre-commit", "post-commit", "commit-msg", "post-checkout", "pre-auto-gc"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {mark}\n")
        (hooks / name).chmod(0o755)


def _reset(path: Path, run_root: Path) -> str:
    env = make_env(
        "repo", Config(run_root=str(run_root), env_options={"repo": {"path": str(path)}})
    )
    try:
        obs, _ = env.reset(Task(env="repo", instruction="look around", setup={}), seed=0)
        out = env.step("cat pkg.py")[0]
        assert "def add" in out, out
        return obs
    finally:
        env.close()


def test_plain_folder_gitconfig_and_hooks_never_run(tmp_path: Path) -> None:
    mark = tmp_path / "PWNED"
    _plant(tmp_path / "proj", mark)
    _reset(tmp_path / "proj", tmp_path / "run")
    assert not mark.exists(), "git ran a program the repository configured"


def test_git_repository_config_filters_and_hooks_never_run(tmp_path: Path) -> None:
    """The repository's own .git/config (a downloaded repo may carry one) is ignored too."""
    mark = tmp_path / "PWNED"
    repo = tmp_path / "proj"
    _plant(repo, mark)
    env = {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=x", "-c", "user.email=x@y"]):
        if args[0] == "-c":
            args = [*args, "commit", "-q", "-m", "x", "--no-verify"]
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    (repo / ".git" / "config").write_text(_hostile_config(mark))
    mark.unlink(missing_ok=True)
    _reset(repo, tmp_path / "run")
    assert not mark.exists(), "git ran a program the repository's .git/config named"


def test_gitfile_pointing_at_a_hostile_repository_is_not_followed(tmp_path: Path) -> None:
    """A plain folder with a `.git` file ("gitdir: ELSEWHERE") would send `git init` there."""
    mark = tmp_path / "PWNED"
    evil = tmp_path / "evil"
    subprocess.run(["git", "init", "-q", str(evil)], check=True, capture_output=True)
    (evil / ".git" / "config").write_text(_hostile_config(mark))
    before = sorted(p.name for p in (evil / ".git").iterdir())
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pkg.py").write_text("def add(a, b):\n    return a + b\n")
    (proj / ".git").write_text(f"gitdir: {evil / '.git'}\n")
    # A plain folder whose .git is a file: source_state falls back to hashing the files.
    _reset(proj, tmp_path / "run")
    assert not mark.exists()
    assert sorted(p.name for p in (evil / ".git").iterdir()) == before


def test_apply_patch_ignores_a_workspace_config_the_agent_planted(tmp_path: Path) -> None:
    mark = tmp_path / "PWNED"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "a.txt").write_text("one\n")
    ws = take_snapshot(proj, tmp_path / "snap")
    (ws / ".git" / "config").write_text(_hostile_config(mark))
    (ws / ".gitattributes").write_text("* filter=evil\n")
    patch = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n"
    apply_patch(ws, patch)
    assert (ws / "a.txt").read_text() == "two\n"
    assert not mark.exists()


def test_export_head_refuses_paths_through_links(tmp_path: Path) -> None:
    """A crafted tree with a link `d -> OUTSIDE` and a file `d/x` writes nothing outside."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    outside.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, capture_output=True)
    git = ["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@y"]
    link = (
        subprocess.run(
            [*git, "hash-object", "-w", "--stdin"],
            input=str(outside).encode(),
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    blob = (
        subprocess.run(
            [*git, "hash-object", "-w", "--stdin"], input=b"evil\n", check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    sub = (
        subprocess.run(
            [*git, "mktree"],
            input=f"100644 blob {blob}\tx\n".encode(),
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    # Entries must be sorted: "d" (link) then "d" (tree) is a duplicate name git would never make.
    top = f"120000 blob {link}\td\n040000 tree {sub}\td\n100644 blob {blob}\tok\n"
    tree = (
        subprocess.run(
            [*git, "mktree", "--missing"], input=top.encode(), check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    commit = (
        subprocess.run([*git, "commit-tree", tree, "-m", "x"], check=True, capture_output=True)
        .stdout.decode()
        .strip()
    )
    subprocess.run([*git, "update-ref", "HEAD", commit], check=True, capture_output=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    export_head(repo, dest)
    assert list(outside.iterdir()) == []
    assert (dest / "ok").read_text() == "evil\n"


def _bug_task() -> Task:
    return next(suite.to_task(r) for r in suite.read_instances(suite.DEMO_BUGS))


def _submit_after(actions: list[str], root: Path) -> float:
    env = make_env("repo", Config(run_root=str(root)))
    try:
        env.reset(_bug_task(), seed=0)
        for a in actions:
            obs, _, _, _, info = env.step(a)
            assert not info.get("error"), obs
        return env.step("submit")[1]
    finally:
        env.close()


def _create(path: str, content: str) -> str:
    return json.dumps({"create": path, "content": content})


_FORCE_PASS = """import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


def test_conftest_forcing_every_report_to_pass_scores_zero(tmp_path: Path) -> None:
    for where in ("conftest.py", "tests/conftest.py"):
        assert _submit_after([_create(where, _FORCE_PASS)], tmp_path / where) == 0.0, where


def test_printed_passed_lines_score_zero(tmp_path: Path) -> None:
    """sitecustomize.py / usercustomize.py / a .pth file, and the package itself at import,
    print `PASSED <id>` for every test the task names: none of it is where the score is read."""
    t = _bug_task()
    ids = [*t.gold["fail_to_pass"], *t.gold.get("pass_to_pass", [])]
    lines = "".join(f"print('PASSED {i}')\n" for i in ids)
    actions = [
        _create("sitecustomize.py", lines),
        _create("usercustomize.py", lines),
        _create("fake.pth", "import sys; sys.stdout.write('PASSED x')\n"),
        json.dumps(
            {"edit": "wordstats/__init__.py", "old": "import re\n", "new": "import re\n" + lines}
        ),
    ]
    assert _submit_after(actions, tmp_path) == 0.0


def test_gold_fix_still_scores_one_with_an_agent_conftest_beside_it(tmp_path: Path) -> None:
    """The protections do not cost a real fix its score: gold patch + a harmless conftest."""
    t = _bug_task()
    gold = "git apply - <<'EOF'\n" + t.gold["patch"] + "EOF"
    assert _submit_after([gold, _create("conftest.py", "X = 1\n")], tmp_path) == 1.0


def _env(root: Path, **opts: object):
    return make_env("repo", Config(run_root=str(root), env_options={"repo": opts}))


def _task() -> Task:
    return Task(env="repo", instruction="look around", setup={})


def test_tmp_is_sized(tmp_path: Path) -> None:
    env = _env(tmp_path, tmp_mb=16)
    try:
        env.reset(_task(), seed=0)
        obs = env.step("head -c 40000000 /dev/zero > /tmp/big; echo rc=$?")[0]
        assert "rc=0" not in obs and "No space left" in obs, obs
    finally:
        env.close()


def test_workspace_total_size_ends_the_episode(tmp_path: Path) -> None:
    env = _env(tmp_path, workspace_mb=40)
    try:
        env.reset(_task(), seed=0)
        obs, _, _, trunc, info = env.step(
            "head -c 30000000 /dev/zero > a; head -c 30000000 /dev/zero > b"
        )
        assert trunc and info["error"] and "over the 40 MB limit" in obs, obs
        assert "ended" in env.step("ls")[0]
    finally:
        env.close()


_HOLD = "python -c \"import time; b = b'x' * (250 << 20); time.sleep(3); print('held')\""


def test_memory_limit_holds_for_the_episode_not_per_process(tmp_path: Path) -> None:
    """Three processes of 250 MB each against memory_mb=600: not all three may hold it."""
    env = _env(tmp_path, memory_mb=600, timeout_s=30)
    try:
        env.reset(_task(), seed=0)
        obs = env.step(f"{_HOLD} & {_HOLD} & {_HOLD} & wait")[0]
        assert obs.split("stderr:")[0].count("held") < 3, obs
        assert "held" in env.step(_HOLD)[0]  # one alone still fits
    finally:
        env.close()


def test_fork_bomb_in_one_episode_does_not_starve_another(tmp_path: Path) -> None:
    bomb, calm = _env(tmp_path / "a", timeout_s=6), _env(tmp_path / "b", timeout_s=30)
    try:
        bomb.reset(_task(), seed=0)
        calm.reset(_task(), seed=0)
        with ThreadPoolExecutor(1) as pool:
            # Every process slot the limit allows, held (a bomb that churns would let forks slip).
            running = pool.submit(bomb.step, "for i in $(seq 400); do sleep 20 & done; wait")
            time.sleep(3)
            spawn = "import subprocess; subprocess.run(['true'], check=True); print('survived')"
            obs = calm.step(f'python -c "{spawn}"')[0]
            running.result()
        assert "survived" in obs, obs
    finally:
        bomb.close()
        calm.close()


def test_a_python_under_tmp_stays_visible(tmp_path: Path) -> None:
    """The sandbox's /tmp is mounted first: a venv or tool folder under /tmp is bound over it."""
    tool = tmp_path / "venv" / "lib"
    tool.mkdir(parents=True)
    (tool / "mod.py").write_text("VALUE = 42\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    result = Sandbox(ws, ro_paths=[tmp_path / "venv"]).run(f"cat {tool / 'mod.py'}")
    assert "VALUE = 42" in result.stdout, result.render()


def test_sdist_is_verified_before_anything_is_unpacked_or_run(tmp_path: Path, monkeypatch) -> None:
    """An sdist whose setup.py writes a file: with a wrong pin nothing is unpacked or run, and
    with the right pin it is unpacked but its setup code still never runs."""
    import hashlib
    import http.server
    import io
    import tarfile
    import threading

    from lbi.envs.repo import projects

    mark = tmp_path / "PWNED"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {
            "evilpkg-1.0/setup.py": f"open({str(mark)!r}, 'w').write('ran')\n",
            "evilpkg-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sdist = buf.getvalue()
    page = json.dumps(
        {
            "meta": {"api-version": "1.0"},
            "name": "evilpkg",
            "files": [
                {"filename": "evilpkg-1.0.tar.gz", "url": "/files/evilpkg-1.0.tar.gz", "hashes": {}}
            ],
        }
    ).encode()

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (
                (sdist, "application/gzip")
                if "files" in self.path
                else (page, "application/vnd.pypi.simple.v1+json")
            )
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
    try:
        bad = projects.Project("evilpkg", "1.0", "0" * 64, ".")
        with pytest.raises(projects.FetchError, match="sha256"):
            projects.fetch(bad, tmp_path / "data")
        assert not mark.exists()
        assert list((tmp_path / "data").iterdir()) == []  # nothing left behind
        good = projects.Project("evilpkg", "1.0", hashlib.sha256(sdist).hexdigest(), ".")
        dest = projects.fetch(good, tmp_path / "data")
        assert (dest / "setup.py").exists() and not mark.exists()
    finally:
        server.shutdown()
