"""The model door: the one path every LLM call in lbi takes.

A stage hands the door a `ChatRequest`; the door answers from the disk cache when it can, and
otherwise checks the budget, waits for a concurrency slot, calls the backend under a timeout,
retries transient failures with exponential backoff and full jitter, counts tokens and cost,
and stores the answer. Stages therefore never see a 429 or a half-spent budget, and a rerun of
a finished stage costs no model calls at all. `chat_json` adds structured output on top:
native JSON-schema decoding where the backend has it, a parse-and-repair loop everywhere.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lbi.config import Config
from lbi.models.accounting import Accountant, run_accountant
from lbi.models.base import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    Model,
    ModelError,
    RetriesExhausted,
    StructuredOutputError,
    TransientModelError,
)
from lbi.models.cache import CallCache, cache_key, record_key
from lbi.models.json_answer import check_schema, extract_json, repair_turns
from lbi.models.registry import make_model, split_spec
from lbi.models.thinking import thinks_by_name, without_thinking
from lbi.tokens import MARGIN, PER_MESSAGE, budget_counter, counter_for, prompt_tokens

# The least answer budget the door leaves a request in a small context: with less room the
# request is sent as it is, and the endpoint's refusal is that unit's record.
MIN_ANSWER_TOKENS = 64


class ModelDoor:
    """Cache, budget, concurrency limit, timeout, retries and accounting around one `Model`."""

    def __init__(
        self,
        model: Model,
        config: Config,
        cache: CallCache | None,
        accountant: Accountant,
        *,
        record_path: str | Path | None = None,
        owns_cache: bool = False,
    ) -> None:
        self.model = model
        self.name = model.name
        self.config = config
        self.cache = cache
        self.accountant = accountant
        self._prefix, self._model_arg = split_spec(model.name)
        # A backend serving weights from a file the user named says which version of them it
        # loaded: the cache must not hand a retrained model the old model's answers.
        version = getattr(model, "weights_version", "")
        if version:
            self._model_arg = f"{self._model_arg}@{version}"
        self._door = config.door
        self._thinks = thinks_by_name(model.name)  # or learnt from an answer (`thinks`)
        capabilities = getattr(model, "capabilities", None)
        self._reads_meta = bool(getattr(capabilities, "reads_meta", False))
        # Another server under the same model name, or another reasoning effort, answers
        # differently: the backend names what of its endpoint enters the cache key.
        self._endpoint: dict[str, Any] = dict(getattr(model, "cache_identity", None) or {})
        # A backend whose calls cannot be stopped (in-process llama.cpp) says so with its own
        # `timeout_s` (None: wait): timing it out would only queue a retry behind the call
        # that is still running, and on a loaded CPU every retry timed out the same way.
        self._timeout_s: float | None = getattr(model, "timeout_s", config.door.timeout_s)
        self._semaphore = asyncio.Semaphore(max(1, config.door.concurrency))
        self._owns_cache = owns_cache
        self._record = open(record_path, "a", encoding="utf-8") if record_path else None  # noqa: SIM115
        self._recorded: set[str] = set()
        self._inflight: dict[str, asyncio.Future[ChatResponse]] = {}
        self._prepared = False
        self._prepare_lock = asyncio.Lock()

    async def prepare(self) -> None:
        """Once, before the first call and before a prompt is fitted: the backend learns what
        it can of its endpoint (`prepare()`: the weights a server serves, the context it runs
        with), and what enters the cache key is read again."""
        if self._prepared:
            return
        async with self._prepare_lock:
            if self._prepared:
                return
            prepare = getattr(self.model, "prepare", None)
            if prepare is not None:
                await prepare()
            self._endpoint = dict(getattr(self.model, "cache_identity", None) or {})
            self._prepared = True

    @property
    def capabilities(self) -> Capabilities:
        """The backend's, read on each use: an endpoint that refused a field has stepped down."""
        return self.model.capabilities

    @property
    def thinks(self) -> bool:
        """Whether the model thinks before it answers (`models.thinking`; see lbi.models.thinking)."""
        setting = self.config.models.thinking
        known = self._thinks or self.capabilities.thinks
        return setting == "on" or (setting == "auto" and known)

    def answer_tokens(self, kind: str, asked: int) -> int:
        """The answer budget a request of this kind asking for `asked` tokens gets: the role's
        configured limit if set, plus room for thinking where the model thinks."""
        limits = self.config.models.max_tokens
        limit = getattr(limits, kind, None)
        base = limit if isinstance(limit, int) and limit > 0 else asked
        return base + (limits.thinking if self.thinks else 0)

    async def chat(self, request: ChatRequest, *, stage: str = "default") -> ChatResponse:
        """One answer, its thinking (if any) apart from its text; an answer cut at the token
        limit is asked once more with a larger limit and, if cut again, returned with
        `truncated` set (callers must not read it as whole). A model that thinks gets
        `models.max_tokens.thinking` more on every limit: its reasoning is spent from it."""
        limits = self.config.models.max_tokens
        limit = getattr(limits, request.kind, None)
        if isinstance(limit, int) and limit > 0:
            request = replace(request, max_tokens=limit)
        base, thinks = request.max_tokens, self.thinks
        if thinks:
            request = replace(request, max_tokens=base + limits.thinking)
        response = without_thinking(await self._chat_once(request, stage))
        self._saw_thinking(response)
        if response.truncated and limits.length_retry_factor > 1:
            bigger = int(request.max_tokens * limits.length_retry_factor)
            if self.thinks and not thinks:
                # Seen thinking only now: ask as every later call (and a resumed run) will,
                # so the answer is the one the cache holds for that request.
                bigger = base + limits.thinking
            response = without_thinking(
                await self._chat_once(replace(request, max_tokens=bigger), stage)
            )
            if response.truncated:
                self.accountant.record_truncated(stage)
        return response

    def _saw_thinking(self, response: ChatResponse) -> None:
        if self._thinks or not (response.reasoning or response.reasoning_tokens):
            return
        self._thinks = True
        note = getattr(self.model, "note_thinking", None)
        if note is not None:
            note()

    def _within_context(self, request: ChatRequest) -> ChatRequest:
        """The answer's budget cut to the room the prompt leaves in a known context: a thinking
        model's budget (or a doubled one after a cut answer) can exceed a small context alone,
        and every server refuses a prompt + max_tokens over it (vLLM, llama.cpp, OpenAI)."""
        limit = self.capabilities.context_length
        if not limit or not request.max_tokens:
            return request
        # No tokenizer counts more tokens than the prompt has UTF-8 bytes: when even that bound
        # leaves room, the prompt is not tokenized (the common case, on every call's path).
        upper = sum(
            len(str(m.get("content") or "").encode()) + 2 * PER_MESSAGE for m in request.messages
        )
        if upper + MARGIN + request.max_tokens <= limit:
            return request
        room = limit - prompt_tokens(request.messages, budget_counter(self))
        if request.max_tokens <= room:
            return request
        return replace(request, max_tokens=max(MIN_ANSWER_TOKENS, room))

    def _counted(self, request: ChatRequest, response: ChatResponse) -> ChatResponse:
        """A response whose server sent no token counts, counted here: `budget.max_tokens`
        and the cost still see it (an uncounted call would spend nothing, silently)."""
        count = counter_for(self)
        answer = response.text + response.reasoning + json.dumps(response.tool_calls)
        return replace(
            response,
            prompt_tokens=prompt_tokens(request.messages, count),
            completion_tokens=count(answer) if answer.strip("[]") else 0,
        )

    async def _chat_once(self, request: ChatRequest, stage: str) -> ChatResponse:
        await self.prepare()
        request = self._within_context(request)
        key = cache_key(
            self._prefix,
            self._model_arg,
            request,
            with_meta=self._reads_meta,
            endpoint=self._endpoint,
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.accountant.record_hit(stage)
                self._write_record(request, hit)
                return hit
        # Single flight: an identical request already on its way is awaited, not sent again.
        pending = self._inflight.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            self.accountant.record_hit(stage)
            return replace(shared, cached=True)
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self._send(key, request, stage)
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: waiters re-raise it; nobody else must log it
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(response)
        return response

    async def _send(self, key: str, request: ChatRequest, stage: str) -> ChatResponse:
        self.accountant.check_budget()  # before spending: raises BudgetExceeded
        # The slot is held through backoff sleeps on purpose: under 429s the door slows down
        # instead of letting a queued call take the slot and hit the same limit.
        async with self._semaphore:
            response = await self._call_with_retries(request, stage)
        if response.usage_estimated:
            response = self._counted(request, response)
        self.accountant.record_call(stage, self.name, response, response.latency_s)
        if self.cache is not None:
            self.cache.put(key, response, model=self.name)
        self._write_record(request, response)
        return response

    async def _call_with_retries(self, request: ChatRequest, stage: str) -> ChatResponse:
        door = self._door
        last: ModelError | None = None
        for attempt in range(door.max_retries + 1):
            if attempt:
                self.accountant.record_retry(stage)
                await asyncio.sleep(self._backoff(attempt, last))
            start = time.perf_counter()
            try:
                # asyncio.timeout (not wait_for) so the common path creates no extra task.
                async with asyncio.timeout(self._timeout_s):
                    response = await self.model.complete(request)
            except TimeoutError:
                last = TransientModelError(f"no answer within {self._timeout_s:g}s (timeout)")
                self.accountant.record_timeout(stage, time.perf_counter() - start)
                continue
            except TransientModelError as e:
                if "timed out" in str(e).lower():  # the backend's own read timeout
                    self.accountant.record_timeout(stage, time.perf_counter() - start)
                last = e
                continue
            except ModelError as e:
                self.accountant.record_failure(stage, str(e))
                raise
            response.latency_s = time.perf_counter() - start
            return response
        reason = str(last) if last else "no attempt made"
        self.accountant.record_failure(stage, reason)
        raise RetriesExhausted(
            f"{self.name}: gave up after {door.max_retries + 1} attempts: {reason}"
        )

    def _backoff(self, attempt: int, error: ModelError | None) -> float:
        """Full jitter (uniform in [0, base*2^n]); a server's Retry-After wins when given."""
        door = self._door
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), door.backoff_max_s))
        cap = min(door.backoff_max_s, door.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(0.0, cap)

    async def chat_json(
        self,
        request: ChatRequest,
        schema: dict[str, Any],
        *,
        stage: str = "default",
        validate: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Ask for a JSON value matching `schema`; repair by quoting the error back to the model.

        The request always carries the schema (it is part of the cache key, and backends that
        decode against it use it); the repair turns are only added after an unusable answer.
        """
        req = replace(request, json_schema=schema)
        attempts = 1 + max(0, self._door.json_repair_attempts)
        error = ""
        for _ in range(attempts):
            response = await self.chat(req, stage=stage)
            if response.truncated:  # a cut JSON value is not repaired by asking again
                error = f"the answer was cut at the token limit ({req.max_tokens} tokens)"
                break
            try:
                value = extract_json(response.text)
                check_schema(value, schema)
                if validate is not None:
                    validate(value)
                return value
            except (ValueError, TypeError, KeyError) as e:
                error = str(e) or type(e).__name__
            req = replace(
                req, messages=[*req.messages, *repair_turns(response.text, error, schema)]
            )
        self.accountant.record_failure(stage, f"no valid JSON: {error}")
        raise StructuredOutputError(
            f"{self.name}: no valid JSON after {attempts} attempts: {error}"
        )

    def _write_record(self, request: ChatRequest, response: ChatResponse) -> None:
        if self._record is None:
            return
        key = record_key(request)
        if key in self._recorded:
            return
        self._recorded.add(key)
        line = {
            "key": key,
            "kind": request.kind,
            "model": self.name,
            "messages": request.messages,
            "response": response.to_json(),
        }
        # One write per line, flushed: a killed run leaves whole lines behind.
        self._record.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._record.flush()

    async def aclose(self) -> None:
        await self.model.aclose()
        if self._record is not None:
            self._record.close()
            self._record = None
        if self._owns_cache and self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> ModelDoor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def open_door(
    spec: str,
    config: Config,
    accountant: Accountant | None = None,
    cache: CallCache | None = None,
    *,
    record_path: str | Path | None = None,
) -> ModelDoor:
    """Build the backend for `spec` and put a door in front of it."""
    model = make_model(spec, config)
    owns = cache is None and config.cache.enabled
    if owns:
        cache = CallCache(config.cache_path)
    return ModelDoor(
        model,
        config,
        cache if config.cache.enabled else None,
        accountant or run_accountant(config),
        record_path=record_path,
        owns_cache=owns,
    )


__all__ = ["ModelDoor", "check_schema", "extract_json", "open_door"]
