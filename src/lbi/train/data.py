"""OpenAI-format chat examples -> token ids with loss on the assistant turns only, self-checked.

Why our own masking: TRL's `assistant_only_loss` needs `{% generation %}` markers in the chat
template, and most templates (SmolLM2's ChatML among them) have none; without them the mask is
silently wrong. We render the conversation prefix by prefix with the base model's own template:
the text between "everything before turn k + generation prompt" and "everything through turn k"
is exactly what the model must produce at turn k, so those tokens carry loss and nothing else.
Each piece is tokenized on its own, which is also how the prompt is cut at inference time.

The self-check raises instead of training on a wrong mask: an assistant turn that renders as
nothing, a template that drops the assistant's text or its tool calls, a template whose shorter
renderings are not prefixes of longer ones, or an example left with no target token.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbi.models.chat import with_system
from lbi.train.options import TrainError

IGNORE = -100  # label value that the loss skips
_PROBE_FN = "lbi_probe_fn"


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_targets(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class DataStats:
    n_examples: int = 0
    n_dropped: int = 0  # no target token left after truncation
    n_truncated: int = 0
    tokens: int = 0
    target_tokens: int = 0
    tool_calls: str = "template"  # how tool calls reached the text: template | inline


def load_chat_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read the JSONL that `lbi export --format openai` writes."""
    p = Path(path)
    if not p.is_file():
        raise TrainError(f"training data not found: {p}")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TrainError(f"{p}:{n} is not JSON: {e.msg}") from None
    return rows


def _text(content: Any) -> str:
    """OpenAI content may be a string, None, or a list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _render(tok: Any, messages: list[dict[str, Any]], tools: Any, gen: bool) -> str:
    try:
        out = tok.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=gen
        )
    except Exception as e:  # jinja errors: a role or field the template does not accept
        raise TrainError(f"the chat template failed to render a conversation: {e}") from None
    return str(out)


def renders_tool_calls(tok: Any) -> bool:
    """Does the template write `tool_calls` into the text at all? (ChatML templates often don't.)"""
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": _PROBE_FN, "arguments": '{"q": 1}'},
    }
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]
    try:
        return _PROBE_FN in _render(tok, with_system(msgs), None, False)
    except TrainError:
        return False


def renders_tools(tok: Any) -> bool:
    tool = {"type": "function", "function": {"name": _PROBE_FN, "parameters": {"type": "object"}}}
    try:
        return _PROBE_FN in _render(tok, [{"role": "user", "content": "x"}], [tool], True)
    except TrainError:
        return False


def _inline_call(call: dict[str, Any]) -> str:
    """Hermes-style `<tool_call>` text for templates that cannot render structured calls."""
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        with contextlib.suppress(json.JSONDecodeError):  # keep malformed arguments verbatim
            args = json.loads(args)
    return (
        "<tool_call>\n"
        + json.dumps({"name": fn.get("name", ""), "arguments": args})
        + "\n</tool_call>"
    )


def normalize(
    example: dict[str, Any], inline_calls: bool, inline_tools: bool
) -> tuple[list[dict[str, Any]], Any]:
    """Plain-string contents, a system turn as the served models get, tool calls as text if asked."""
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TrainError("a training example has no `messages` list")
    out: list[dict[str, Any]] = []
    for m in messages:
        msg = {
            k: v
            for k, v in m.items()
            if k in ("role", "content", "tool_calls", "tool_call_id", "name", "weight")
        }
        msg["content"] = _text(m.get("content"))
        if inline_calls and msg.get("tool_calls"):
            parts = [msg["content"]] if msg["content"] else []
            msg["content"] = "\n".join(parts + [_inline_call(c) for c in msg.pop("tool_calls")])
        out.append(msg)
    out = with_system(out)
    tools = example.get("tools") or None
    if tools and inline_tools:
        listing = "\n".join(json.dumps(t.get("function", t)) for t in tools)
        out[0] = {**out[0], "content": f"{out[0]['content']}\n\n# Tools\n{listing}"}
        tools = None
    return out, tools


def _check_turn(span: str, msg: dict[str, Any], where: str) -> None:
    if not span.strip():
        raise TrainError(
            f"{where}: the chat template renders the assistant turn as nothing, so the loss mask is empty"
        )
    content = msg["content"].strip()
    if content and content not in span:
        raise TrainError(f"{where}: the chat template drops the assistant's text from its turn")
    for call in msg.get("tool_calls") or []:
        name = call.get("function", call).get("name", "")
        if name not in span:
            raise TrainError(
                f"{where}: the assistant-token mask misses the tool call {name!r} (the template does not "
                "render tool_calls); set train.tool_calls=inline"
            )


def segments(
    tok: Any, messages: list[dict[str, Any]], tools: Any, where: str
) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, is_target) pieces, up to the last assistant turn."""
    pieces: list[tuple[str, bool]] = []
    done = ""
    for k, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prompt = _render(tok, messages[:k], tools, True)
        full = _render(tok, messages[: k + 1], tools, False)
        if prompt.startswith(full):  # the turn adds no text beyond the generation prompt
            raise TrainError(
                f"{where}, turn {k}: the chat template renders the assistant turn as nothing, "
                "so the loss mask is empty"
            )
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise TrainError(
                f"{where}: the chat template is not prefix-stable (rendering more turns rewrites earlier "
                "text), so assistant spans cannot be located"
            )
        span = full[len(prompt) :]
        _check_turn(span, msg, f"{where}, turn {k}")
        pieces += [(prompt[len(done) :], False), (span, msg.get("weight", 1) != 0)]
        done = full
    if not pieces:
        raise TrainError(f"{where}: no assistant turn to learn from")
    return [(t, target) for t, target in pieces if t]


def tokenize(tok: Any, pieces: list[tuple[str, bool]], max_length: int) -> tuple[Tokenized, bool]:
    """Token ids and labels (IGNORE outside targets), cut to max_length from the right."""
    ids: list[int] = []
    labels: list[int] = []
    for text, target in pieces:
        part = tok(text, add_special_tokens=False)["input_ids"]
        ids += part
        labels += part if target else [IGNORE] * len(part)
    truncated = len(ids) > max_length
    return Tokenized(ids[:max_length], labels[:max_length]), truncated


def build(
    tok: Any, examples: list[dict[str, Any]], max_length: int, tool_calls: str
) -> tuple[list[Tokenized], DataStats]:
    """Tokenize every example with its assistant-only labels, checking each mask on the way."""
    has_calls = any(m.get("tool_calls") for ex in examples for m in ex.get("messages") or [])
    inline = tool_calls == "inline" or (
        tool_calls == "auto" and has_calls and not renders_tool_calls(tok)
    )
    inline_tools = any(ex.get("tools") for ex in examples) and not renders_tools(tok)
    stats = DataStats(tool_calls="inline" if inline else "template")
    rows: list[Tokenized] = []
    for i, ex in enumerate(examples):
        messages, tools = normalize(ex, inline, inline_tools)
        row, truncated = tokenize(tok, segments(tok, messages, tools, f"example {i}"), max_length)
        stats.n_truncated += truncated
        if row.n_targets == 0:
            stats.n_dropped += 1
            continue
        rows.append(row)
        stats.tokens += len(row.input_ids)
        stats.target_tokens += row.n_targets
    stats.n_examples = len(rows)
    if not rows:
        raise TrainError(
            f"the assistant-token mask is empty for all {len(examples)} examples "
            f"(max_length={max_length} may cut every assistant turn off)"
        )
    return rows, stats


def split_holdout(
    rows: list[Tokenized], fraction: float, cap: int, seed: int
) -> tuple[list[Tokenized], list[Tokenized]]:
    """A seeded random held-out slice (at least one example when there are two or more)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(cap, round(len(rows) * fraction)) if fraction > 0 else 0
    if fraction > 0 and len(rows) >= 2:
        n_eval = max(1, n_eval)
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in order[:n_eval]]
