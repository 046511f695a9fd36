"""`openai:MODEL`: any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, ...).

The backend does one thing: turn a `ChatRequest` into one HTTP call and the answer into a
`ChatResponse`, mapping every failure to `TransientModelError` (worth a retry) or `ModelError`
(not). Retries, timeouts and limits are the door's job, so the SDK's own retries are off.

Two transports (`models.openai.transport`): `aiohttp` (default), one lean JSON POST per call
(`lbi.models.http_post`), and `sdk`, the official `openai` SDK's `client.post` (its auth,
headers and exception types; about three times the client CPU per call, measured in
`bench/model_door.py`). Both map failures the same
way: by HTTP status, or as a connection failure.

The API key is read from the environment variable the config names and never leaves the
client: every message built here names the variable, and is scrubbed of the key regardless.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import openai

from lbi.config import OpenAIModelConfig
from lbi.models.base import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    ContextOverflow,
    EndpointError,
    ModelError,
    TransientModelError,
)
from lbi.models.endpoints import EndpointRecord, EndpointStore, default_record, is_local
from lbi.models.http_post import ConnectionFailed, HTTPStatus, JSONPoster
from lbi.models.openai_errors import (
    is_context_overflow,
    is_quota_exhausted,
    read_error,
    retry_after,
    stated_context,
    stated_token_limit,
)
from lbi.models.openai_request import OPTIONAL_FIELDS, build_body, refused_field, step_down
from lbi.models.registry import register
from lbi.models.served import context_length, listed_model, served_identity

try:  # openai >= 3 ships on httpx2; older releases on httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[no-redef]

if TYPE_CHECKING:
    from lbi.config import Config


def resolve_api_key(cfg: OpenAIModelConfig) -> str:
    """The key from `$api_key_env`; local servers, and named endpoints that name no key
    variable or are marked free, need none, so they get a placeholder."""
    key = os.environ.get(cfg.api_key_env, "").strip() if cfg.api_key_env else ""
    if key:
        return key
    if is_local(cfg.base_url) or not cfg.api_key_env or getattr(cfg, "free", False):
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


def cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens served from the server's prefix cache, where the server says."""
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0


def _reasoning(message: dict[str, Any]) -> str:
    """A thinking model's reasoning, where the server sends it apart from the content:
    `reasoning_content` (vLLM, DeepSeek, llama.cpp) or `reasoning` (Ollama, OpenRouter)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


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


DEFAULT_BASE_URL = OpenAIModelConfig().base_url.rstrip("/")


def endpoint_identity(cfg: OpenAIModelConfig) -> dict[str, Any]:
    """What of the endpoint enters the call cache's key: the server (another one serving a
    model of the same name answers differently) and the reasoning effort. OpenAI's own URL at
    the default effort adds nothing, so caches made before this was keyed still answer."""
    base_url = cfg.base_url.rstrip("/")
    effort = getattr(cfg, "reasoning_effort", None)
    identity: dict[str, Any] = {}
    if base_url != DEFAULT_BASE_URL:
        identity["base_url"] = base_url
    if effort:
        identity["reasoning_effort"] = effort
    return identity


def endpoint_capabilities(record: EndpointRecord) -> Capabilities:
    return Capabilities(
        json_schema=record.json_mode == "json_schema",
        json_object=record.json_mode == "json_object",
        grammar=record.grammar,
        tools=record.tools,
        seed="seed" not in record.refused,
        parallel_tools=record.parallel_tools,
        context_length=record.context_length,
        thinks=record.thinks,
    )


class OpenAIModel:
    """One model on one OpenAI-compatible endpoint.

    What the endpoint supports comes from the probe's record for this base_url + model (see
    `lbi.models.endpoints`), else from defaults; `models.openai.*` settings override both. A
    400 that names a field lbi sent (a refused `temperature`, `max_tokens`, `response_format`)
    drops that field (or steps the JSON mode down) and sends the call again at once; what was
    learnt is written back to the record, so the next run does not ask again.
    """

    def __init__(
        self,
        model: str,
        cfg: OpenAIModelConfig,
        store: EndpointStore | None = None,
        prefix: str = "openai",
    ) -> None:
        if not model:
            raise ModelError(f"{prefix} model needs a name, e.g. {prefix}:gpt-4o-mini")
        self.model = model
        self.name = f"{prefix}:{model}"
        self.base_url = cfg.base_url
        self.key_env = cfg.api_key_env
        self.cfg = cfg
        self.store = store if getattr(cfg, "use_probe", True) else None
        stored = self.store.get(cfg.base_url, model) if self.store is not None else None
        self.record = stored or default_record(cfg.base_url, model)
        # Grammars are a llama.cpp extension; other servers reject or ignore the field.
        self.llama_cpp = getattr(cfg, "server", "") == "llama.cpp"
        self.cache_identity = endpoint_identity(cfg)
        self._apply_overrides()
        self._key = resolve_api_key(cfg)
        self._client: openai.AsyncOpenAI | None = None
        self._poster: JSONPoster | None = None
        if cfg.transport == "sdk":
            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=cfg.base_url,
                max_retries=0,  # the door retries, with jitter and a budget check
                http_client=_http_client(cfg),
                default_headers=getattr(cfg, "headers", None),
            )
        else:
            self._poster = JSONPoster(
                cfg.base_url,
                self._key,
                timeout_s=cfg.timeout_s,
                max_connections=cfg.max_connections,
                headers=getattr(cfg, "headers", None),
            )

    async def prepare(self) -> None:
        """Once, before the first call (`ModelDoor.prepare`), from a server other than OpenAI's
        own: what `/models` says it serves enters the call cache's key (a retrained model served
        under the same name must not get the old model's answers), and where no context is
        known yet (config, probe, a run before), the context the server states (Ollama's from
        `/api/show`: it cuts longer prompts without a word) is kept for fitting prompts."""
        if self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            return
        item = await listed_model(self)
        if item is not None:
            self.cache_identity = {**self.cache_identity, "served": served_identity(item)}
        if self.record.context_length is None:
            context = await context_length(self, item)
            if context is not None:
                self.record.context_length, self.record.source = context, "probe"
                self._learnt()

    def _apply_overrides(self) -> None:
        cfg, rec = self.cfg, self.record
        if getattr(cfg, "json_mode", "auto") != "auto":
            rec.json_mode = cfg.json_mode
        if getattr(cfg, "tools", "auto") != "auto":
            rec.tools = cfg.tools == "native"
        if self.llama_cpp:
            rec.grammar = True
        context = getattr(cfg, "context_length", None)
        if context:
            rec.context_length = context
        self.capabilities = endpoint_capabilities(rec)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return build_body(self.model, request, self.record, self.cfg)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        for _ in range(len(OPTIONAL_FIELDS) + 1):
            body = self.body(request)
            try:
                if self._poster is not None:
                    content = await self._poster.post("/chat/completions", body)
                else:
                    content = await self._sdk_post(body)
            except HTTPStatus as e:
                if self._clamped(e, body):
                    continue
                field = refused_field(e.status, e.text, body)
                if field is not None and step_down(self.record, field):
                    self._learnt()
                    continue
                if field is not None and self.body(request) != body:
                    continue  # a concurrent call already learnt this refusal: resend
                error = self._status_error(e.status, e.headers, e.text)
            except ConnectionFailed as e:
                error = TransientModelError(
                    f"connection to {self.base_url} failed: {self._scrub(str(e))}"
                )
            else:
                return self._parse(content)
            # Raised outside the except block so no transport exception (an SDK error's
            # request carries the Authorization header) is even kept as __context__.
            raise error
        raise ModelError(f"{self.base_url} kept refusing the request after every step down")

    def _clamped(self, e: HTTPStatus, body: dict[str, Any]) -> bool:
        """A completion-token limit refused as too large, with the maximum stated: keep that
        maximum (for this run and the next ones) and send again. Dropping the limit instead
        would leave every later answer unbounded."""
        limit = stated_token_limit(e.status, read_error(e.text), body)
        if limit is None:
            return False
        self.record.max_output_tokens = limit
        self.record.source = "learnt"
        self._learnt()
        return True

    def note_thinking(self) -> None:
        """An answer carried reasoning: the model thinks (kept for the next runs too)."""
        if not self.record.thinks:
            self.record.thinks = True
            self._learnt()

    def _learnt(self) -> None:
        """A refusal changed what we send: keep it for this run and the next ones."""
        self.capabilities = endpoint_capabilities(self.record)
        if self.store is not None:
            self.store.put(self.record)

    async def _sdk_post(self, body: dict[str, Any]) -> bytes:
        """The SDK transport, with its exceptions turned into the transport-neutral ones."""
        assert self._client is not None
        try:
            raw = await self._client.post("/chat/completions", cast_to=httpx.Response, body=body)
        except openai.APIStatusError as e:
            raise HTTPStatus(
                e.status_code, dict(e.response.headers), e.response.text or e.message
            ) from None
        except openai.APIConnectionError as e:  # includes APITimeoutError
            raise ConnectionFailed(self._root_cause(e)) from None
        except openai.APIError as e:
            raise ConnectionFailed(f"malformed answer ({type(e).__name__})") from None
        return raw.content

    def _parse(self, content: bytes) -> ChatResponse:
        try:
            data = json.loads(content)
            choice = data["choices"][0]
            message = choice["message"]
            usage = data.get("usage") or {}
            details = usage.get("completion_tokens_details") or {}
            counted = isinstance(usage, dict) and (
                "prompt_tokens" in usage or "completion_tokens" in usage
            )
            return ChatResponse(
                usage_estimated=not counted,
                reasoning_tokens=int(details.get("reasoning_tokens") or 0),
                text=message.get("content") or "",
                tool_calls=[_tool_call(tc) for tc in message.get("tool_calls") or []],
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                finish_reason=str(choice.get("finish_reason") or "stop"),
                cached_prompt_tokens=cached_tokens(usage),
                reasoning=_reasoning(message),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransientModelError(
                f"malformed answer from {self.base_url} (not a chat completion JSON body)"
            ) from None

    def _status_error(self, status: int, headers: Any, text: str) -> ModelError:
        """The error a non-2xx answer is, worded with the server's own message."""
        where = self.base_url
        answer = read_error(text)
        said = self._scrub(" ".join(answer.message.split()))[:300]
        if is_quota_exhausted(status, answer):
            return EndpointError(f"{where} says the account's quota is used up (429): {said}")
        if status == 429:
            wait = retry_after(headers)
            wait = answer.retry_delay if wait is None else wait
            return TransientModelError(f"rate limited (429) by {where}: {said}", wait)
        if status in (401, 403):
            return EndpointError(
                f"{where} refused the API key from ${self.key_env} ({status}): {said}"
            )
        if status == 404:
            return EndpointError(
                f"unknown model {self.model!r} at {where} (404: {said}); check the name and "
                "base_url"
            )
        if is_context_overflow(status, answer):
            limit = stated_context(text)
            if limit is not None and limit != self.record.context_length:
                # Known from now on (and on the next runs): prompts are fitted to it before
                # they are sent.
                self.record.context_length, self.record.source = limit, "learnt"
                self._learnt()
            return ContextOverflow(f"the prompt does not fit the context at {where}: {said}", limit)
        if status >= 500:
            return TransientModelError(f"server error ({status}) from {where}: {said}")
        if status in (408, 409, 425):
            return TransientModelError(f"server asked to retry ({status}) from {where}: {said}")
        return ModelError(f"{where} rejected the request ({status}): {said}")

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
        if self._client is not None:
            await self._client.close()
        if self._poster is not None:
            await self._poster.aclose()


@register("openai")
def _factory(arg: str, config: Config) -> OpenAIModel:
    return OpenAIModel(arg, config.models.openai, EndpointStore(config.cache_path.parent))


@register("endpoint")
def _named(arg: str, config: Config) -> OpenAIModel:
    """`NAME:MODEL` for an endpoint in the config's `endpoints:` (make_model routes it here)."""
    name, _, model = arg.partition(":")
    if name not in config.endpoints:
        raise ModelError(f"no endpoint {name!r} in the config's endpoints")
    store = EndpointStore(config.cache_path.parent)
    return OpenAIModel(model, config.endpoints[name], store, prefix=name)
