"""A synchronous handle on one MCP client session (stdio subprocess or streamable HTTP).

The official SDK is async and its `Client` must be entered and exited by the same task, so
one long-lived task on a private event loop (`BackgroundLoop`) holds the connection open
until `close()`, and every request is a coroutine sent to that loop. Closing the client
ends the stdio server's whole process tree, so nothing outlives the environment.
The environment's options and the reading of tool results live here too, next to the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import IO, Any, cast

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, Tool
from pydantic import BaseModel, ConfigDict

from lbi.aio import BackgroundLoop
from lbi.envs.base import EnvError


class McpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] | None = None
    url: str | None = None
    digest_tool: str | None = None
    digest_resource: str | None = None
    reset_tool: str | None = None
    hidden_tools: list[str] = []
    docs_dir: str | None = None
    tasks_file: str | None = None
    suite: str = "mcp-tasks"
    timeout_s: float = 30.0
    startup_timeout_s: float = 60.0


def result_value(result: CallToolResult) -> Any:
    """A tool result as a value: structured content when given, else JSON-parsed text."""
    if result.structured_content is not None:
        sc = result.structured_content
        return sc["result"] if isinstance(sc, dict) and set(sc) == {"result"} else sc
    text = result_text(result)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def result_text(result: CallToolResult) -> str:
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        if text is not None:
            parts.append(text)
        else:  # images, audio, embedded resources: say what came back rather than dump bytes
            kind = getattr(block, "mime_type", None) or getattr(block, "type", "content")
            parts.append(f"[{kind} content]")
    return "\n".join(parts)


def observation(result: CallToolResult, limit: int = 8000) -> str:
    if result.structured_content is not None and not result.is_error:
        text = json.dumps(result_value(result), ensure_ascii=False, default=str)
    else:
        text = result_text(result)
    text = (
        text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} more characters]"
    )
    return f"Error: {text}" if result.is_error else (text or "(empty result)")


class McpSession:
    def __init__(
        self,
        *,
        command: list[str] | None = None,
        url: str | None = None,
        errlog: Path | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        if bool(command) == bool(url):
            raise EnvError("an MCP server needs exactly one of a command (stdio) or a url (HTTP)")
        self.target = " ".join(command) if command else str(url)
        self._errlog_path = errlog
        self._errlog: IO[str] | None = None
        self._client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = BackgroundLoop("lbi-mcp")
        try:
            self._loop.run(self._start(command, url), timeout=startup_timeout_s)
        except BaseException as e:
            detail = self._log_tail()
            self.close()
            while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
                e = e.exceptions[0]  # anyio wraps the real cause (e.g. connection refused)
            reason = "timed out" if isinstance(e, TimeoutError) else f"{type(e).__name__}: {e}"
            raise EnvError(
                f"could not connect to MCP server {self.target!r} ({reason}){detail}"
            ) from None

    async def _start(self, command: list[str] | None, url: str | None) -> None:
        if command:
            params = StdioServerParameters(command=command[0], args=command[1:])
            # The server's stderr goes to a file: it is noise in our output but the first
            # place to look when a server fails to start.
            self._errlog = open(self._errlog_path, "w") if self._errlog_path else sys.stderr  # noqa: SIM115
            client = Client(cast(Any, stdio_client(params, errlog=self._errlog)), cache=None)
        else:
            client = Client(str(url), cache=None)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold(client, ready))
        await ready

    async def _hold(self, client: Client, ready: asyncio.Future[None]) -> None:
        """Enter the client, publish it, and keep it open until close() sets the stop event."""
        assert self._stop is not None
        try:
            async with client:
                self._client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else RuntimeError(str(e)))
        finally:
            self._client = None

    def _need(self) -> Client:
        if self._client is None:
            raise EnvError(f"the MCP connection to {self.target!r} is closed")
        return self._client

    @property
    def instructions(self) -> str:
        return self._need().instructions or ""

    @property
    def server_name(self) -> str:
        info = self._need().server_info
        return info.name if info is not None else "mcp"

    def tools(self, timeout: float = 30.0) -> list[Tool]:
        async def go() -> list[Tool]:
            client, out, cursor = self._need(), [], None
            while True:
                page = await client.list_tools(cursor=cursor)
                out.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return out

        return self._loop.run(go(), timeout)

    def resources(self, timeout: float = 30.0) -> list[tuple[str, str, str | None]]:
        """(uri, name, mime type) of every listed resource; [] when the server has none."""

        async def go() -> list[tuple[str, str, str | None]]:
            client = self._need()
            caps = client.server_capabilities
            if caps.resources is None:
                return []
            page = await client.list_resources()
            return [(str(r.uri), r.name, r.mime_type) for r in page.resources]

        return self._loop.run(go(), timeout)

    def read_text(self, uri: str, timeout: float = 30.0) -> str:
        async def go() -> str:
            result = await self._need().read_resource(uri)
            return "\n".join(getattr(c, "text", "") for c in result.contents)

        return self._loop.run(go(), timeout)

    def call(self, name: str, arguments: dict[str, Any], timeout: float) -> CallToolResult:
        """Call a tool; raises TimeoutError after `timeout` seconds (the request is cancelled)."""

        async def go() -> CallToolResult:
            return await asyncio.wait_for(self._need().call_tool(name, arguments), timeout)

        return self._loop.run(go(), timeout + 5.0)

    def _log_tail(self, n: int = 600) -> str:
        if self._errlog_path is None or not self._errlog_path.exists():
            return ""
        text = self._errlog_path.read_text(errors="replace").strip()
        return f"; server stderr: ...{text[-n:]}" if text else ""

    def close(self) -> None:
        """Close the client (which ends a stdio server's process tree), then the loop."""
        if self._stop is not None and self._task is not None:
            stop, task = self._stop, self._task

            async def shutdown() -> None:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 20)

            with contextlib.suppress(Exception):
                self._loop.run(shutdown(), timeout=30)
            self._stop = self._task = None
        self._loop.close()
        if self._errlog is not None and self._errlog is not sys.stderr:
            self._errlog.close()
        self._errlog = None
