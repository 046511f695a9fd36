"""The `Model` protocol every backend satisfies, its request/response records, and errors.

Nothing outside `lbi.models` talks to a provider: callers build a `ChatRequest` and send it
through the door (`lbi.models.door.ModelDoor`), which adds cache, retry, accounting and limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Capabilities:
    json_schema: bool = False  # honours a JSON-schema response format
    grammar: bool = False  # takes a llama.cpp GBNF grammar
    tools: bool = False  # returns structured tool calls
    seed: bool = False  # takes a sampling seed
    json_object: bool = False  # honours response_format {"type": "json_object"}
    parallel_tools: bool = False  # may return several tool calls in one answer
    context_length: int | None = None
    # The answer depends on `ChatRequest.meta` (a test double replaying a task's reference):
    # the call cache then keys on meta too, or tasks with identical prompts share one answer.
    reads_meta: bool = False
    # The model thinks before it answers, as a probe or an earlier answer showed: the door
    # gives it room for that (lbi.models.thinking).
    thinks: bool = False

    @property
    def json_mode(self) -> str:
        """How structured calls are made: native schema, JSON mode + schema in the prompt, or
        the schema in the prompt and a parse-and-repair loop."""
        if self.json_schema:
            return "json_schema"
        return "json_object" if self.json_object else "prompt"


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = None
    sample: int = 0  # sample index: distinct cache entries for repeated samples at T > 0
    tools: list[dict[str, Any]] | None = None
    json_schema: dict[str, Any] | None = None
    grammar: str | None = None
    stop: list[str] | None = None
    # Not sent and not part of the cache key: what the prompt is for ("act", "tasks", ...)
    # and context a test double may use (e.g. the task being replayed).
    kind: str = "chat"
    meta: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """Everything that changes the answer: the cache key is a hash of this + backend + model."""
        return {
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "sample": self.sample if self.temperature > 0 else 0,
            "tools": self.tools,
            "json_schema": self.json_schema,
            "grammar": self.grammar,
            "stop": self.stop,
        }


@dataclass
class ChatResponse:
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    cached: bool = False
    latency_s: float = 0.0
    reasoning_tokens: int = 0  # hidden reasoning, already inside completion_tokens
    # Prompt tokens the server took from its prefix cache instead of processing them (OpenAI's
    # and llama.cpp's `usage.prompt_tokens_details.cached_tokens`); part of prompt_tokens.
    cached_prompt_tokens: int = 0
    # What a thinking model wrote before its answer (`reasoning_content`, `reasoning`, or a
    # `<think>` block taken out of the text): kept, never read as the answer (models.thinking).
    reasoning: str = ""
    # The server sent no token counts (`usage` missing): the door counted them itself, with the
    # model's tokenizer where it has one, else the estimate (`lbi.tokens`).
    usage_estimated: bool = False

    @property
    def truncated(self) -> bool:
        """Cut at the token limit: never to be read as a complete answer."""
        return self.finish_reason == "length"

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": self.tool_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            **({"reasoning": self.reasoning} if self.reasoning else {}),
            **({"usage_estimated": True} if self.usage_estimated else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatResponse:
        return cls(
            text=d.get("text", ""),
            tool_calls=list(d.get("tool_calls") or []),
            prompt_tokens=int(d.get("prompt_tokens", 0)),
            completion_tokens=int(d.get("completion_tokens", 0)),
            finish_reason=d.get("finish_reason", "stop"),
            reasoning_tokens=int(d.get("reasoning_tokens", 0)),
            cached_prompt_tokens=int(d.get("cached_prompt_tokens", 0)),
            reasoning=str(d.get("reasoning") or ""),
            usage_estimated=bool(d.get("usage_estimated", False)),
        )


@runtime_checkable
class Model(Protocol):
    """A chat backend. `name` is the spec string users type (`openai:gpt-4o`, `local`, ...).

    Optional: `timeout_s`. A backend that has it sets the door's per-call timeout for itself;
    `None` means the door waits (in-process backends, whose calls cannot be stopped midway).
    Optional: `weights_version`. A backend serving weights from a path the user named sets it
    (see `assets.weights_version`); the door adds it to the cache key.
    Optional: `cache_identity`, a dict of what else changes the answer (the `openai:` backend:
    its base_url and reasoning effort); the door adds it to the cache key.
    Optional: `note_thinking()`. Called by the door when an answer shows the model thinks, so
    a backend that keeps what it learns about its endpoint keeps that too.
    """

    name: str
    capabilities: Capabilities

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...


class ModelError(RuntimeError):
    """A model call failed for good (bad request, rejected key, unknown model)."""


class EndpointError(ModelError):
    """The endpoint refuses every call alike (a rejected key, an unknown model, an exhausted
    quota): no unit of work is at fault, so the run stops at once instead of failing them all."""


class ContextOverflow(ModelError):
    """The prompt (with the answer's budget) is longer than the endpoint's context: this one
    request cannot succeed as it is; sent again it must be smaller (`lbi.tokens`). `limit`: the
    context the endpoint stated in its answer, where it stated one."""

    def __init__(self, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class StructuredOutputError(ModelError):
    """The model gave no usable JSON even after repair turns: one unit of work fails, not the run."""


class RetriesExhausted(ModelError):
    """Transient failures outlasted the door's retries (timeouts, 5xx): not the example's fault,
    so a stage records it as an error and leaves the unit to be done again on the next run."""


class TransientModelError(ModelError):
    """Worth retrying: 429, 5xx, timeout, dropped connection, malformed body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(RuntimeError):
    """The run's token or money cap was reached; the run stops cleanly and can be resumed."""
