"""A fake OpenAI-compatible server on 127.0.0.1, for tests and benchmarks of the model door.

Why a real HTTP server and not a mocked client: the door's retry, timeout and connection-pool
behaviour only shows up over real sockets (429 headers, dropped connections, a hung response).
It answers deterministically (a hash of the last message; a JSON object built from the schema
when JSON-schema output is asked; a tool call when tools are offered and `tool_calls` is set),
and injects faults (`lbi.testing.fake_faults`): from a script, `srv.faults.extend(["429",
"500"])` fails the next two requests; `fault_ratio={"503": 0.1}` fails a tenth of them at
random (seeded); `sticky={"500": 0.2}` fails a fifth of distinct requests every time they are
sent (an error that outlasts retries), chosen by a hash of their messages.

    with FakeOpenAIServer(latency=0.05) as srv:
        ... srv.base_url ...  # "http://127.0.0.1:PORT/v1"

Faults: see `FAULTS` (429, 5xx, hang, drop, malformed, 401, 404, overflow, quota). Run
`python -m lbi.testing.fake_openai`
to serve from a separate process (benchmarks do, so the server does not share a core's event
loop with the client it measures); `GET /stats` then returns the counters.

To drive lbi's whole pipeline (benchmarks of `lbi synth`), three options make the answers
useful rather than merely well-formed: `array_items` (arrays get that many distinct items, at
least the schema's `minItems`), `match_ids` (arrays get one item per `<excerpt id="N">` /
`<example id="N">` block of the prompt (with or without the batch's boundary suffix), and an integer field of item N is N — so batched
labelling and judging prompts get one answer per block), and `react_actions` (a chat request
whose system prompt asks for `REASON: ... ACTION: ...` gets the next action of that list,
counted from the numbered HISTORY lines of the prompt; the last one repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import importlib.util
import json
import random
import socket
import threading
from typing import Any

from aiohttp import web

from lbi.testing.fake_answers import BLOCK_ID, digest, example_for, literal, react_answer
from lbi.testing.fake_context import ollama_show, over_context, stated_meta
from lbi.testing.fake_faults import respond, sticky_fault
from lbi.testing.providers import (
    Profile,
    error_body,
    prompt_schema,
    refusal,
    shape_answer,
    too_large,
)


class FakeOpenAIServer:
    """`/v1/chat/completions` and `/v1/embeddings` with latency and scripted faults."""

    def __init__(
        self,
        latency: float = 0.0,
        *,
        port: int = 0,
        fault_ratio: dict[str, float] | None = None,
        seed: int = 0,
        tool_calls: bool = False,
        json_schema: bool = True,
        api_key: str | None = None,
        hang_s: float = 30.0,
        retry_after: float = 0.01,
        embed_dim: int = 16,
        array_items: int = 1,
        match_ids: bool = False,
        react_actions: list[str] | None = None,
        profile: Profile | None = None,
        context: int | None = None,
        served: dict[str, Any] | None = None,
        usage: bool = True,
        prompt_cache: bool = False,
    ) -> None:
        self.profile = profile  # a provider's documented behaviour (lbi.testing.providers)
        if profile is not None:
            tool_calls, json_schema = profile.tools, profile.json_schema
        self.latency = latency
        self.port = port
        self.fault_ratio = dict(fault_ratio or {})
        self.tool_calls = tool_calls
        self.json_schema = json_schema  # False: ignore response_format, like some servers do
        self.api_key = api_key  # when set, other bearer tokens get a 401
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.embed_dim = embed_dim
        self.array_items = array_items
        self.match_ids = match_ids
        self.react_actions = list(react_actions or [])
        # The context this server runs with, where set: a longer request gets the profile's
        # overflow answer (Ollama's: cut silently, counted in `truncated`), and /models and
        # /api/show state it where the provider does (lbi.testing.fake_context).
        self.context = context
        self.served = dict(served or {})  # more fields of the /models entry (the weights served)
        self.usage = usage  # False: answers carry no `usage` block (some servers, some proxies)
        # True: a first message seen before is counted as served from the prompt cache
        # (`usage.prompt_tokens_details.cached_tokens`, as OpenAI, Gemini and DeepSeek report)
        self.prompt_cache = prompt_cache
        self._prefixes: set[str] = set()
        self.truncated = 0
        self.overflows = 0
        self.faults: collections.deque[str] = collections.deque()  # consumed one per request
        self.sticky: dict[str, float] = {}  # fault -> share of distinct requests, every time
        self.replies: collections.deque[str] = collections.deque()  # canned texts, one per answer
        # canned tool-call lists (name, arguments), one list per answer, before `replies`
        self.tool_replies: collections.deque[list[tuple[str, dict[str, Any]]]] = collections.deque()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults_served: collections.Counter[str] = collections.Counter()
        self.bodies: list[dict[str, Any]] = []  # every chat request body, in arrival order
        self.headers: list[dict[str, str]] = []  # every chat request's headers, the same order
        self.embedding_requests = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "faults_served": dict(self.faults_served),
            "overflows": self.overflows,
            "truncated": self.truncated,
        }

    def reset_stats(self) -> None:
        self.requests = self.max_in_flight = 0
        self.faults_served.clear()
        self.bodies.clear()

    # -- serving ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/api/version", self._ollama_version)
        app.router.add_post("/api/show", self._ollama_show)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        model = self.profile.model if self.profile else "fake"
        meta = stated_meta(self.profile, self.context)
        item = {"id": model, "object": "model", "owned_by": "fake", **meta, **self.served}
        return web.json_response({"object": "list", "data": [item]})

    async def _ollama_version(self, request: web.Request) -> web.Response:
        if self.profile is None or self.profile.ollama_show is None:
            raise web.HTTPNotFound()
        return web.json_response({"version": "0.12.0"})

    async def _ollama_show(self, request: web.Request) -> web.Response:
        if self.profile is None or self.profile.ollama_show is None:
            raise web.HTTPNotFound()
        body = await request.json()
        if body.get("model") != self.profile.model:
            return web.json_response(
                {"error": f"model '{body.get('model')}' not found"}, status=404
            )
        return web.json_response(ollama_show(self.profile, self.context))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def _next_fault(self, body: dict[str, Any]) -> str | None:
        if self.faults:
            return self.faults.popleft()
        sticky = sticky_fault(body, self.sticky)
        if sticky is not None:
            return sticky
        for fault, ratio in self.fault_ratio.items():
            if self._rng.random() < ratio:
                return fault
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
            if self.latency:
                await asyncio.sleep(self.latency)
            if (
                self.api_key is not None
                and request.headers.get("Authorization") != f"Bearer {self.api_key}"
            ):
                return await respond(self, "401", request)
            fault = self._next_fault(body)
            if fault is not None:
                return await respond(self, fault, request)
            refused = refusal(self.profile, body) if self.profile else None
            if self.profile is not None and refused is not None:
                message = self.profile.refuses[refused]
                return web.json_response(
                    error_body(self.profile, 400, message, refused), status=400
                )
            capped = too_large(self.profile, body) if self.profile else None
            if capped is not None:
                return web.json_response(capped, status=400)
            over = over_context(self, body)
            if over is not None:
                return web.json_response(over[1], status=over[0])
            shaped = shape_answer(self.profile, body, self._answer(body))
            self._usage(body, shaped)
            return web.json_response(shaped)
        finally:
            self.in_flight -= 1

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or [{}]
        last = str(messages[-1].get("content") or "")
        tool_calls: list[dict[str, Any]] = []
        fmt = body.get("response_format") or {}
        schema = prompt_schema(messages) if self.profile is not None else None
        json_mode = fmt.get("type") == "json_object" and (
            self.profile.json_object if self.profile else self.json_schema
        )
        if self.tool_replies and body.get("tools"):
            tool_calls = [
                {
                    "id": f"call_{k}_{digest(last)[:6]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for k, (name, args) in enumerate(self.tool_replies.popleft())
            ]
            text: str | None = None
        elif self.replies:
            text = self.replies.popleft()
        elif body.get("tools") and self.tool_calls:
            fn = body["tools"][0]["function"]
            args = example_for(fn.get("parameters") or {"type": "object"}, last)
            call = {"name": fn["name"], "arguments": json.dumps(args)}
            tool_calls = [{"id": f"call_{digest(last)[:8]}", "type": "function", "function": call}]
            if self.profile is not None and self.profile.parallel_tools and "once per" in last:
                second = {"name": fn["name"], "arguments": json.dumps(example_for(
                    fn.get("parameters") or {"type": "object"}, last + "#2"))}  # fmt: skip
                tool_calls.append({"id": f"call_{digest(last)[:7]}2", "type": "function",
                                   "function": second})  # fmt: skip
            text = None
        elif fmt.get("type") == "json_schema" and self.json_schema:
            text = json.dumps(self._schema_value(fmt["json_schema"].get("schema") or {}, last))
        elif schema is not None:  # a model that follows a schema given in the prompt
            text = json.dumps(self._schema_value(schema, last))
        elif json_mode:
            text = json.dumps({"ok": True})
        elif self.profile is not None and self.profile.grammar and literal(body):
            text = literal(body)
        else:
            text = react_answer(messages, self.react_actions) or f"echo {digest(last)}"
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-{digest(last)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text or "") // 4 + 1,
                "total_tokens": prompt_tokens + len(text or "") // 4 + 1,
            },
        }

    def _usage(self, body: dict[str, Any], answer: dict[str, Any]) -> None:
        """The usage block as configured: absent, or with the prompt cache's share."""
        if not self.usage:
            answer.pop("usage", None)
            return
        messages = body.get("messages") or []
        first = str(messages[0].get("content") or "") if messages else ""
        if self.prompt_cache and first in self._prefixes:
            cached = min(len(first) // 4, answer["usage"]["prompt_tokens"])
            answer["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
        self._prefixes.add(first)

    def _schema_value(self, schema: dict[str, Any], last: str) -> Any:
        if self.match_ids:
            blocks = len(set(BLOCK_ID.findall(last)))
            return example_for(schema, last, blocks or self.array_items, numbered=bool(blocks))
        return example_for(schema, last, self.array_items)

    async def _embeddings(self, request: web.Request) -> web.Response:
        self.embedding_requests += 1
        body = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for i, text in enumerate(texts):
            raw = hashlib.sha256(str(text).encode()).digest() * (self.embed_dim // 32 + 1)
            vec = [b / 255.0 - 0.5 for b in raw[: self.embed_dim]]
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        tokens = sum(len(str(t)) // 4 + 1 for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Serve from a daemon thread with its own event loop; returns once accepting."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        failed: list[BaseException] = []

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._listen())
            except OSError as e:  # e.g. the port is taken
                failed.append(e)
                return
            finally:
                ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failed:
            raise RuntimeError(f"fake OpenAI server did not start: {failed or 'timeout'}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    async def _listen(self) -> None:
        sock = _bind(self.port)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Hung handlers ("hang" faults) are still sleeping: cancel them so the loop closes clean.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


def server_event_loop() -> str:
    """The loop `main` serves on: uvloop when installed (the dev extra), else asyncio.

    The server stands in for an endpoint whose only cost is its latency, so its own CPU per
    request should be as small as we can make it: uvloop cuts it by about a third, which
    benchmarks of the client would otherwise count against the client.
    """
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground; prints `PORT <n>` once accepting (for a parent process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--tool-calls", action="store_true")
    parser.add_argument("--array-items", type=int, default=1, help="items per JSON array")
    parser.add_argument(
        "--match-ids", action="store_true", help='one array item per <... id="N"> prompt block'
    )
    parser.add_argument(
        "--react-actions",
        default="",
        help='comma-separated actions for REASON/ACTION prompts, e.g. "list,set a 1,submit"',
    )
    parser.add_argument("--context", type=int, default=None, help="the context size to enforce")
    args = parser.parse_args(argv)
    srv = FakeOpenAIServer(
        latency=args.latency,
        port=args.port,
        tool_calls=args.tool_calls,
        array_items=args.array_items,
        match_ids=args.match_ids,
        react_actions=[a.strip() for a in args.react_actions.split(",") if a.strip()],
        context=args.context,
    )

    async def serve() -> None:
        await srv._listen()
        print(f"PORT {srv.port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        if server_event_loop() == "uvloop":
            import uvloop

            uvloop.run(serve())
        else:
            asyncio.run(serve())


if __name__ == "__main__":
    main()
