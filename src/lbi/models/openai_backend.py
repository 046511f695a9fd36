"""`openai:MODEL`: any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, ...).

The backend does one thing: turn a `ChatRequest` into one HTTP call and the answer into a
`ChatResponse`, mapping every failure to `TransientModelError` (worth a retry) or `ModelError`
(not). Retries, timeouts and limits are the door's job, so the SDK's own retries are off.

Why `client.post(...)` and not `client.chat.completions.create(...)`: `create` walks every
message through the SDK's typed-params transform and builds pydantic models for the answer,
which costs over a millisecond of CPU per call; at concurrency 32 on two cores that alone
pushes the door well past its overhead target. `post` is the SDK's documented path for raw
requests and keeps its auth, headers and status-to-exception mapping. The aiohttp transport
is used when aiohttp is installed (it costs a fraction of httpx's CPU per request).

The API key is read from the environment variable the config names and never leaves the
client: every message built here names the variable, and is scrubbed of the key regardless.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import openai

from lbi.models.base import Capabilities, ChatRequest, ChatResponse, ModelError, TransientModelError
from lbi.models.registry import register

try:  # openai >= 3 ships on httpx2; older releases on httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[no-redef]

if TYPE_CHECKING:
    from lbi.config import Config, OpenAIModelConfig

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def is_local(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "") in _LOCAL_HOSTS


def resolve_api_key(cfg: OpenAIModelConfig) -> str:
    """The key from `$api_key_env`; local servers need none, so they get a placeholder."""
    key = os.environ.get(cfg.api_key_env, "").strip()
    if key:
        return key
    if is_local(cfg.base_url):
        return "EMPTY"
    raise ModelError(f"${cfg.api_key_env} is not set; put the API key for {cfg.base_url} in it")


def _http_client(cfg: OpenAIModelConfig) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=cfg.max_connections, max_keepalive_connections=cfg.max_connections
    )
    timeout = httpx.Timeout(cfg.timeout_s, connect=min(10.0, cfg.timeout_s))
    try:
        return openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
    except RuntimeError:  # aiohttp missing: the SDK's httpx transport, sized the same way
        return openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _tool_call(raw: dict[str, Any]) -> dict[str, Any]:
    fn = raw.get("function") or {}
    args = fn.get("arguments", "")
    if not isinstance(args, str):  # some servers send an object instead of a JSON string
        args = json.dumps(args)
    return {
        "id": str(raw.get("id") or ""),
        "type": "function",
        "function": {"name": str(fn.get("name") or ""), "arguments": args},
    }


class OpenAIModel:
    """One model on one OpenAI-compatible endpoint."""

    def __init__(self, model: str, cfg: OpenAIModelConfig) -> None:
        if not model:
            raise ModelError("openai model needs a name, e.g. openai:gpt-4o-mini")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = cfg.base_url
        self.key_env = cfg.api_key_env
        # Grammars are a llama.cpp extension; other servers reject or ignore the field.
        self.llama_cpp = getattr(cfg, "server", "") == "llama.cpp"
        # Assumed; `lbi models probe` checks what the endpoint really honours.
        self.capabilities = Capabilities(
            json_schema=True, grammar=self.llama_cpp, tools=True, seed=True
        )
        self._key = resolve_api_key(cfg)
        self._client = openai.AsyncOpenAI(
            api_key=self._key,
            base_url=cfg.base_url,
            max_retries=0,  # the door retries, with jitter and a budget check
            http_client=_http_client(cfg),
        )

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = request.stop
        if request.tools:
            body["tools"] = request.tools
        if request.grammar and self.llama_cpp:
            body["grammar"] = request.grammar
        elif request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
        return body

    async def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            raw = await self._client.post(
                "/chat/completions", cast_to=httpx.Response, body=self.body(request)
            )
        except openai.APIError as e:
            error = self._map_error(e)
        else:
            return self._parse(raw.content)
        # Raised outside the except block so the SDK error (whose request carries the
        # Authorization header) is not even kept as __context__.
        raise error

    def _parse(self, content: bytes) -> ChatResponse:
        try:
            data = json.loads(content)
            choice = data["choices"][0]
            message = choice["message"]
            usage = data.get("usage") or {}
            return ChatResponse(
                text=message.get("content") or "",
                tool_calls=[_tool_call(tc) for tc in message.get("tool_calls") or []],
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                finish_reason=str(choice.get("finish_reason") or "stop"),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransientModelError(
                f"malformed answer from {self.base_url} (not a chat completion JSON body)"
            ) from None

    def _map_error(self, e: openai.APIError) -> ModelError:
        where = self.base_url
        if isinstance(e, openai.RateLimitError):
            return TransientModelError(f"rate limited (429) by {where}", _retry_after(e.response))
        if isinstance(e, openai.AuthenticationError | openai.PermissionDeniedError):
            return ModelError(
                f"{where} rejected the API key from ${self.key_env} ({e.status_code})"
            )
        if isinstance(e, openai.NotFoundError):
            return ModelError(
                f"unknown model {self.model!r} at {where} (404; check the name and base_url)"
            )
        if isinstance(e, openai.InternalServerError):
            return TransientModelError(f"server error ({e.status_code}) from {where}")
        if isinstance(e, openai.APIConnectionError):  # includes APITimeoutError
            return TransientModelError(f"connection to {where} failed: {self._root_cause(e)}")
        if isinstance(e, openai.APIStatusError):
            if e.status_code in (408, 409, 425):
                return TransientModelError(f"server asked to retry ({e.status_code}) from {where}")
            detail = self._scrub(e.message)[:200]
            return ModelError(f"{where} rejected the request ({e.status_code}): {detail}")
        return TransientModelError(f"malformed answer from {where} ({type(e).__name__})")

    def _root_cause(self, e: BaseException) -> str:
        """The innermost cause says what happened ("Server disconnected", "Connect call
        failed"); the SDK's aiohttp transport reports all of them as timeouts."""
        seen = 0
        while e.__cause__ is not None and seen < 10:
            e, seen = e.__cause__, seen + 1
        return self._scrub(str(e) or type(e).__name__)[:160]

    def _scrub(self, text: str) -> str:
        if self._key and self._key != "EMPTY":
            text = text.replace(self._key, f"${self.key_env}")
        return text

    async def aclose(self) -> None:
        await self._client.close()


@register("openai")
def _factory(arg: str, config: Config) -> OpenAIModel:
    return OpenAIModel(arg, config.models.openai)
