"""Thinking models: their reasoning apart from their answer, and room to write both.

Models that think before they answer (Qwen3, QwQ, DeepSeek-R1 and its distills, gpt-oss,
Magistral, Gemini 2.5, OpenAI's o-series and gpt-5) send the thinking either in the content,
inside `<think>…</think>` (llama.cpp without a reasoning parser, vLLM without
`--reasoning-parser`, raw chat templates; a template that opens the block in the prompt leaves
only the closing tag in the answer), or in a field of its own (`reasoning_content`: vLLM,
DeepSeek, llama.cpp; `reasoning`: Ollama, OpenRouter, newer vLLM), or not at all (OpenAI:
counted in `reasoning_tokens` only). The thinking is kept (the step record shows it) and never
read as the answer: an ACTION or a JSON value written while thinking is not the one given.

The thinking is spent from the same completion-token limit as the answer, so a limit sized for
the answer alone (act 384, query 48, judge 360 per example) leaves these models an empty or cut
answer. The door adds `models.max_tokens.thinking` to every limit for a model that thinks: known
by its name, set with `models.thinking=on`, or seen thinking in an answer.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from lbi.models.endpoints import is_reasoning_model

if TYPE_CHECKING:
    from lbi.models.base import ChatResponse

_BLOCK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>\s*", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>\s*", re.IGNORECASE)
# gpt-oss's harmony format, when a server passes it through raw: the answer is the final channel.
_FINAL = "<|channel|>final<|message|>"

# Models that think by default (names as providers and GGUF files spell them). Qwen3's 2507
# Instruct releases do not think; its Thinking releases and the hybrid Qwen3 models do.
_THINKERS = re.compile(
    r"qwen3(?!.*instruct-2507)|qwq|deepseek-r1|r1-distill|gpt-oss|magistral|"
    r"phi-4(?:-mini)?-(?:flash-)?reasoning|gemini-(?:2\.5|3)|glm-4\.[5-9]|thinking|exaone-deep",
    re.IGNORECASE,
)


def thinks_by_name(model: str) -> bool:
    """A model known to think before it answers (its reasoning needs completion tokens)."""
    name = model.partition(":")[2] or model
    return bool(_THINKERS.search(name)) or is_reasoning_model(name)


def split_thinking(text: str) -> tuple[str, str]:
    """(answer, thinking) of a model's text. A block left open (the answer was cut while
    thinking) is all thinking; a lone closing tag (the template opened the block) ends it."""
    if _FINAL in text:
        thinking, _, answer = text.rpartition(_FINAL)
        return answer.replace("<|return|>", "").replace("<|end|>", "").strip(), thinking.strip()
    parts: list[str] = []

    def keep(found: re.Match[str]) -> str:
        parts.append(found.group(2).strip())
        return ""

    answer = _BLOCK.sub(keep, text)
    opened = _OPEN.search(answer)
    if opened:  # never closed: cut while thinking
        parts.append(answer[opened.end() :].strip())
        answer = answer[: opened.start()]
    closed = _CLOSE.search(answer)
    if closed and not parts:  # the prompt opened the block: the answer starts after it
        parts.append(answer[: closed.start()].strip())
        answer = answer[closed.end() :]
    return answer.strip() if parts else answer, "\n\n".join(p for p in parts if p)


def without_thinking(response: ChatResponse) -> ChatResponse:
    """`response` with any thinking moved out of its text into `reasoning` (idempotent)."""
    answer, thinking = split_thinking(response.text)
    if not thinking and answer == response.text:
        return response
    joined = "\n\n".join(t for t in (response.reasoning, thinking) if t)
    return replace(response, text=answer, reasoning=joined)
