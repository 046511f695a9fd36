"""MCP servers as environments: the shipped SQLite server over stdio and streamable HTTP,
and a third-party server from PyPI (mcp-server-time)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbi.config import Config
from lbi.envs.base import EnvError, make_env
from lbi.envs.check import check_env
from lbi.envs.mcp.env import McpEnv
from lbi.envs.mcp.library_suite import suite_tasks
from lbi.envs.tools.actions import format_tool_action

SERVER = [sys.executable, "-m", "lbi.envs.mcp.sqlite_server"]


def with_mcp(cfg: Config, **options: object) -> Config:
    return cfg.model_copy(update={"env_options": {"mcp": options}})


def children() -> set[int]:
    """Live (non-zombie) child processes of this test process, from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                out.add(int(entry.name))
    return out


@pytest.fixture(scope="module")
def env() -> Iterator[McpEnv]:
    e = make_env("mcp", Config())
    assert isinstance(e, McpEnv)
    yield e
    e.close()


def test_docs_are_instructions_tools_and_resources(env: McpEnv) -> None:
    docs = env.docs()
    titles = [d.title for d in docs]
    assert titles[0] == "Server instructions" and "lending library" in docs[0].text
    assert {"Tool query", "Tool insert_row", "Tables", "Lending rules"} <= set(titles)
    assert "Tool state_digest" not in titles and "Tool reset_database" not in titles  # hidden
    query = next(d for d in docs if d.title == "Tool query")
    assert "query(sql)" in query.text and "read-only SELECT" in query.text


def test_action_space_lists_visible_tools_and_done(env: McpEnv) -> None:
    space = env.action_space()
    names = [t["function"]["name"] for t in space.tools or []]
    assert names == [
        "list_tables",
        "describe_table",
        "query",
        "insert_row",
        "update_rows",
        "delete_rows",
        "done",
    ]
    assert space.grammar and '"\\"insert_row\\""' in space.grammar


def test_suite_references_solve_every_task(env: McpEnv) -> None:
    assert env.suites() == ["mcp-library", "mcp-library-quick"]
    tasks = env.load_suite("mcp-library")
    assert len(tasks) == 8 and len(env.load_suite("mcp-library-quick")) == 3
    for task in tasks:
        env.reset(task, seed=0)
        for action in task.reference:
            obs, reward, terminated, _, _ = env.step(action)
        assert terminated and reward == 1.0, (task.name, obs)


def test_wrong_work_fails_the_state_check(env: McpEnv) -> None:
    task = next(t for t in suite_tasks() if t.name == "mcp-library-more-copies")
    env.reset(task, seed=0)
    env.step(
        format_tool_action(
            "update_rows", {"table": "books", "values": {"copies": 9}, "where": {"id": 2}}
        )
    )
    obs, reward, terminated, _, _ = env.step(format_tool_action("done"))
    assert terminated and reward == 0.0 and "check 1 failed" in obs
    answer = next(t for t in suite_tasks() if t.name == "mcp-library-count-copies")
    env.reset(answer, seed=0)
    assert env.step(format_tool_action("done", {"answer": "2"}))[1] == 0.0


def test_digest_changes_with_writes_and_reset_restores_it(env: McpEnv) -> None:
    task = suite_tasks()[0]
    env.reset(task, seed=0)
    start = env.state_digest()
    obs, _, _, _, info = env.step(task.reference[0])
    assert not info["error"] and json.loads(obs) == {"inserted_id": 4}
    assert env.state_digest() != start
    env.reset(task, seed=0)
    assert env.state_digest() == start


def test_errors_are_observations_and_the_episode_goes_on(env: McpEnv) -> None:
    env.reset(suite_tasks()[0], seed=0)
    cases = {
        '{"name": "reset_database", "arguments": {}}': "unknown tool 'reset_database'",
        '{"name": "insert_row", "arguments": {"table": "members"}}': "Field required",
        '{"name": "query", "arguments": {"sql": "DELETE FROM books"}}': "readonly database",
        '{"name": "describe_table", "arguments": {"table": "nope"}}': "no table 'nope'",
        "insert a row please": "no JSON object",
    }
    for action, expected in cases.items():
        obs, _, terminated, _, info = env.step(action)
        assert obs.startswith("Error:") and expected in obs and info["error"] and not terminated
    obs, _, _, _, info = env.step(
        '{"name": "query", "arguments": {"sql": "SELECT count(*) AS n FROM books"}}'
    )
    assert not info["error"] and json.loads(obs) == [{"n": 4}]


def test_timeouts_and_crashing_tools_are_observations(tmp_path: Path) -> None:
    cmd = [*SERVER, "--db", str(tmp_path / "db.sqlite"), "--test-tools"]
    cfg = with_mcp(Config(), command=cmd, reset_tool="reset_database", timeout_s=5)
    env = make_env("mcp", cfg)
    try:
        env.reset(suite_tasks()[0])
        start = time.perf_counter()
        obs, _, terminated, _, info = env.step(format_tool_action("sleep", {"seconds": 60}))
        assert "did not answer within 5s" in obs and info["timeout"] and not terminated
        assert time.perf_counter() - start < 15
        obs, _, _, _, info = env.step(format_tool_action("crash"))
        # An unexpected exception: the SDK reports it without the message (and logs a traceback).
        assert obs == "Error: Error executing tool crash" and info["error"]
        obs, _, _, _, info = env.step(format_tool_action("list_tables"))
        assert not info["error"] and "books" in obs
    finally:
        env.close()


def test_close_ends_the_server_process() -> None:
    before = children()
    env = make_env("mcp", Config())
    started = children() - before
    assert len(started) == 1
    env.close()
    deadline = time.time() + 10
    while children() & started and time.time() < deadline:
        time.sleep(0.1)
    assert not children() & started


def test_bad_options_fail_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EnvError, match=r"env_options\.mcp\.comand"):
        make_env("mcp", with_mcp(Config(), comand=["x"]))
    with pytest.raises(EnvError, match="exactly one of"):
        make_env("mcp", with_mcp(Config(), command=["x"], url="http://127.0.0.1:1/mcp"))
    bad = [sys.executable, "-c", "import sys; sys.stderr.write('no such database\\n'); sys.exit(3)"]
    with pytest.raises(EnvError, match="no such database"):
        make_env("mcp", with_mcp(Config(), command=bad, startup_timeout_s=20))


def test_check_env_passes_over_stdio() -> None:
    report = check_env(lambda: make_env("mcp", Config()))
    assert report.ok, [r for r in report.results if not r.ok]


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path_factory.mktemp("http") / "db.sqlite"
    proc = subprocess.Popen(
        [*SERVER, "--db", str(db), "--http", str(port)], stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


def test_streamable_http_server_solves_the_suite_and_passes_check_env(
    http_url: str, tmp_path: Path
) -> None:
    # A URL server has no built-in suite: the library tasks come in through a tasks file.
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps([t.model_dump(exclude={"id", "env"}) for t in suite_tasks()]))
    cfg = with_mcp(
        Config(), url=http_url, digest_tool="state_digest", reset_tool="reset_database",
        tasks_file=str(tasks_file), suite="library",
    )  # fmt: skip
    env = make_env("mcp", cfg)
    try:
        assert env.max_concurrency == 1  # one shared server
        tasks = env.load_suite("library")
        assert [t.id for t in tasks] == [t.id for t in suite_tasks()]
        for task in tasks:
            env.reset(task, seed=0)
            for action in task.reference:
                _, reward, terminated, _, _ = env.step(action)
            assert terminated and reward == 1.0, task.name
    finally:
        env.close()
    report = check_env(lambda: make_env("mcp", cfg))
    assert report.ok, [r for r in report.results if not r.ok]


def test_third_party_time_server_from_pypi(tmp_path: Path) -> None:
    task = {
        "name": "tokyo-noon",
        "instruction": "What time is it in Tokyo when it is 12:00 in UTC? Answer as HH:MM.",
        "reference": [
            format_tool_action(
                "convert_time",
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
            ),
            format_tool_action("done", {"answer": "21:00"}),
        ],
        "gold": {"answer": "21:00"},
    }
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    cmd = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
    cfg = with_mcp(Config(), command=cmd, tasks_file=str(tmp_path / "tasks.json"), suite="time")
    env = make_env("mcp", cfg)
    try:
        assert {"Tool get_current_time", "Tool convert_time"} <= {d.title for d in env.docs()}
        assert env.suites() == ["time", "time-quick"]
        env.reset(env.load_suite("time")[0])
        obs, _, _, _, info = env.step(task["reference"][0])  # type: ignore[index]
        assert not info["error"] and "21:00" in obs
        assert env.state_digest() == ""  # no digest tool or resource configured
    finally:
        env.close()
    report = check_env(lambda: make_env("mcp", cfg))
    assert report.ok, [r for r in report.results if not r.ok]
