"""`mcp`: any Model Context Protocol server as an environment.

The server's instructions, tool descriptions and documentation resources are the docs; a
tool call (`{"name": ..., "arguments": {...}}`) is an action and its result the observation;
`{"name": "done", "arguments": {"answer": "..."}}` ends the episode. Success is checked on
state, not prose: a task's gold lists tool calls whose results must equal given values
(e.g. a SELECT through the server's query tool), and/or the answer given to `done`.

Options (`config.env_options["mcp"]`): `command` (argv, stdio) or `url` (streamable HTTP),
`digest_tool` / `digest_resource`, `reset_tool`, `hidden_tools`, `docs_dir`, `tasks_file`,
`timeout_s`. With none, the environment starts the shipped SQLite test server over stdio.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.docs import docs_from_source, split_markdown
from lbi.envs.mcp.session import McpOptions, McpSession, observation, result_text, result_value
from lbi.envs.tools.actions import DONE, format_tool_action
from lbi.envs.tools.schema import describe_tool, function_schema, tool_action_space
from lbi.envs.tools.steps import open_step, tool_error
from lbi.types import Doc, Task, content_id

if TYPE_CHECKING:
    from lbi.config import Config

TEST_SERVER = "lbi.envs.mcp.sqlite_server"


class McpEnv:
    """One episode's connection to an MCP server (instances are per episode)."""

    name = "mcp"

    def __init__(self, options: McpOptions) -> None:
        self.options = options
        self._tmp = tempfile.TemporaryDirectory(prefix="lbi-mcp-")
        tmp = Path(self._tmp.name)
        command = options.command
        self._builtin = not command and not options.url
        if self._builtin:  # the shipped test server, on a private copy of its database
            command = [sys.executable, "-m", TEST_SERVER, "--db", str(tmp / "library.sqlite")]
            options = options.model_copy(
                update={
                    "digest_tool": options.digest_tool or "state_digest",
                    "reset_tool": options.reset_tool or "reset_database",
                }
            )
            self.options = options
        self.max_concurrency = 1 if options.url else 4  # a URL server is shared state
        try:
            self.session = McpSession(
                command=command,
                url=options.url,
                errlog=tmp / "server.log",
                startup_timeout_s=options.startup_timeout_s,
            )
        except EnvError:
            self._tmp.cleanup()
            raise
        self._hidden = {*options.hidden_tools, options.digest_tool, options.reset_tool} - {None}
        self._tools = {t.name: t for t in self.session.tools() if t.name not in self._hidden}
        self.task: Task | None = None
        self._over = False

    # -- docs and action space -----------------------------------------------------------
    def _schemas(self) -> list[dict[str, Any]]:
        out = [function_schema(t.name, t.description or "", {}) for t in self._tools.values()]
        for schema, tool in zip(out, self._tools.values(), strict=True):
            schema["function"]["parameters"] = tool.input_schema
        done = "End the episode. Put the answer in `answer` when the task asks a question."
        out.append(
            function_schema(
                DONE, done, {"answer": {"type": "string", "description": "the answer, if any"}}
            )
        )
        out[-1]["function"]["parameters"]["required"] = []
        return out

    def docs(self) -> list[Doc]:
        server = self.session.server_name
        docs = []
        if self.session.instructions.strip():
            text = f"# {server} instructions\n\n{self.session.instructions.strip()}"
            docs.append(
                Doc(
                    env=self.name,
                    source=f"mcp:{server}#instructions",
                    title="Server instructions",
                    text=text,
                )
            )
        for schema in self._schemas()[:-1]:
            name = schema["function"]["name"]
            docs.append(
                Doc(
                    env=self.name,
                    source=f"mcp:{server}#tool/{name}",
                    title=f"Tool {name}",
                    text=describe_tool(schema),
                )
            )
        for uri, rname, mime in self.session.resources():
            if uri == self.options.digest_resource or (
                mime and not mime.startswith(("text/", "application/json"))
            ):
                continue
            docs += self._split(self.session.read_text(uri), f"mcp:{server}#{uri}", rname)
        if self.options.docs_dir:  # a folder, a file or module:ATTR
            for doc in docs_from_source(self.name, self.options.docs_dir):
                docs += self._split(doc.text, doc.source, doc.title)
        return docs

    def _split(self, text: str, source: str, fallback: str) -> list[Doc]:
        return [
            Doc(env=self.name, source=source, title=title or fallback, text=body)
            for title, body in split_markdown(text)
            if body.strip()
        ]

    def action_space(self) -> ActionSpace:
        first = next(iter(self._tools), DONE)
        preface = (
            f"You act on the MCP server '{self.session.server_name}' by calling its tools. "
            'When the task is done, call {"name": "done", "arguments": {"answer": "..."}} '
            "(the answer only when the task asks a question)."
        )
        return tool_action_space(
            self._schemas(), preface, [format_tool_action(first, {}), format_tool_action(DONE)]
        )

    # -- episodes -------------------------------------------------------------------------
    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        self.task, self._over = task, False
        if self.options.reset_tool:
            result = self.session.call(
                self.options.reset_tool,
                dict(task.setup.get("reset_args", {})),
                self.options.timeout_s,
            )
            if result.is_error:
                raise EnvError(
                    f"mcp reset tool {self.options.reset_tool} failed: {result_text(result)[:200]}"
                )
        obs = (
            f"Connected to the MCP server '{self.session.server_name}' with tools: "
            f"{', '.join(self._tools)}. Call done when the task is complete."
        )
        return obs, {"task_id": task.id}

    def step(self, action: str) -> StepResult:
        call = open_step(action, self._over, "episode")
        if isinstance(call, tuple):
            return call
        if call.name == DONE:
            self._over = True
            reward, detail = self._score(str(call.arguments.get("answer", "")))
            return f"Episode finished. {detail}", reward, True, False, {"success": reward >= 1.0}
        if call.name not in self._tools:
            known = ", ".join([*self._tools, DONE])
            return tool_error(f"Error: unknown tool {call.name!r}. Available: {known}.")
        try:
            result = self.session.call(call.name, call.arguments, self.options.timeout_s)
        except TimeoutError:
            msg = f"Error: tool {call.name} did not answer within {self.options.timeout_s:g}s."
            return tool_error(msg, timeout=True)
        except Exception as e:  # a dropped connection or protocol error is an observation too
            return tool_error(f"Error: calling {call.name} failed: {type(e).__name__}: {e}")
        return observation(result), 0.0, False, False, {"error": bool(result.is_error)}

    def _score(self, answer: str) -> tuple[float, str]:
        gold = self.task.gold if self.task else {}
        if not gold:
            return 0.0, "This task has no success check."
        failed = []
        if "answer" in gold and answer.strip().lower() != str(gold["answer"]).strip().lower():
            failed.append("answer")
        for n, check in enumerate(gold.get("checks", [])):
            try:
                result = self.session.call(
                    check["tool"], dict(check.get("arguments", {})), self.options.timeout_s
                )
                ok = not result.is_error and result_value(result) == check["expect"]
            except Exception:
                ok = False
            if not ok:
                failed.append(f"check {n + 1}")
        if failed:
            return 0.0, f"Not solved ({', '.join(failed)} failed)."
        return 1.0, "Solved."

    def state_digest(self) -> str:
        if self.options.digest_tool:
            return content_id(
                result_text(self.session.call(self.options.digest_tool, {}, self.options.timeout_s))
            )
        if self.options.digest_resource:
            return content_id(self.session.read_text(self.options.digest_resource))
        return ""

    def close(self) -> None:
        self.session.close()
        self._tmp.cleanup()

    # -- suites ---------------------------------------------------------------------------
    def _all_tasks(self) -> list[Task]:
        if self.options.tasks_file:
            path = Path(self.options.tasks_file)
            try:
                raw = json.loads(path.read_text())
                return [
                    Task.model_validate({"env": self.name, "origin": "benchmark", **t}) for t in raw
                ]
            except (OSError, json.JSONDecodeError, ValidationError, TypeError) as e:
                raise EnvError(
                    f"mcp tasks_file {path} is unusable: {str(e).splitlines()[0]}"
                ) from None
        if self._builtin:
            from lbi.envs.mcp.library_suite import suite_tasks

            return suite_tasks(self.name)
        return []

    def suites(self) -> list[str]:
        name = (
            "mcp-library" if self._builtin and not self.options.tasks_file else self.options.suite
        )
        return [name, f"{name}-quick"] if self._all_tasks() else []

    def load_suite(self, name: str) -> list[Task]:
        known = self.suites()
        if name not in known:
            raise EnvError(f"unknown suite {name!r} for mcp; known: {', '.join(known) or 'none'}")
        tasks = self._all_tasks()
        return tasks[:3] if name.endswith("-quick") else tasks

    def sample_tasks(self) -> list[Task]:
        tasks = self._all_tasks()[:2]
        if tasks:
            return tasks
        # A server with no task file still gets one task, so the checker can drive it.
        return [
            Task(
                env=self.name,
                instruction="Look at what the server offers, then call done.",
                reference=[format_tool_action(DONE)],
                origin="explore",
            )
        ]


@register_env(
    "mcp", "any MCP server (stdio command or streamable-HTTP url); default: a shipped SQLite server"
)
def _factory(arg: str, config: Config) -> McpEnv:
    raw = dict(config.env_options.get("mcp", {}))
    try:
        options = McpOptions.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise EnvError(f"bad env_options.mcp.{where}: {first['msg']}") from None
    if arg:
        raise EnvError(
            f"mcp takes its server from env_options.mcp, not from the name (got mcp:{arg})"
        )
    return McpEnv(options)
