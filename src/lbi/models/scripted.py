"""`scripted`: a deterministic test double shipped in the package.

Three behaviours, so tests and demos run offline and exactly:
- canned answers by prompt kind (`request.kind`), derived from the request's `meta`;
- a policy that replays a task's reference solution (`meta["reference"]`, step `meta["step"]`),
  or after a failed try the plan its latest reflection wrote (`meta["reflections"]`), with a
  self-evaluation, reflection and value function to match (Reflexion, LATS);
- a simulated user (`user_sim`) that makes the one tool call (a JSON line) the other side's
  latest message asks of it, says "Done." after its result, and "ok" otherwise;
- replay of real model outputs recorded by the door (`scripted:replay=PATH.jsonl`).
Handlers can be overridden per kind: `ScriptedModel(handlers={"judge": fn})`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbi.models.base import Capabilities, ChatRequest, ChatResponse, ModelError
from lbi.models.registry import register

if TYPE_CHECKING:
    from lbi.config import Config

Handler = Callable[[ChatRequest], str]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _tasks(req: ChatRequest) -> str:
    k = int(req.meta.get("k", 3))
    title = str(req.meta.get("doc_title") or "the environment").strip()
    hints = list(req.meta.get("hints") or [])
    tasks = []
    for n in range(k):
        hint = f" ({hints[n % len(hints)]})" if hints else ""
        tasks.append({"instruction": f"Task {n + 1} about {title}{hint}"})
    return json.dumps({"tasks": tasks})


def _plan(reflection: str) -> list[str] | None:
    """The actions a reflection's last `Plan:` line names (a JSON list, or `a; b; c`)."""
    lines = [x for x in reflection.splitlines() if x.strip().startswith("Plan:")]
    if not lines:
        return None
    text = lines[-1].strip().removeprefix("Plan:").strip()
    try:
        got = json.loads(text)
    except ValueError:
        got = [a.strip() for a in text.split(";")]
    return [str(a) for a in got if str(a).strip()] if isinstance(got, list) else None


def _act(req: ChatRequest) -> str:
    step = int(req.meta.get("step", 0))
    reference = list(req.meta.get("reference") or [])
    # After a failed try (Reflexion, LATS) the policy follows its latest reflection's plan:
    # the reflection, not the reference, decides what the next try does.
    reflections = list(req.meta.get("reflections") or [])
    plan = _plan(str(reflections[-1])) if reflections else None
    reference = plan if plan is not None else reference
    fallback = list(req.meta.get("fallback") or []) or ["submit"]
    if step < len(reference):
        action = reference[step]
    else:
        action = fallback[(step - len(reference)) % len(fallback)]
    return f"REASON: scripted step {step}.\nACTION: {action}"


def _backward(req: ChatRequest) -> str:
    labels = []
    for n, window in enumerate(req.meta.get("windows") or []):
        did = "; ".join(str(a) for a in window.get("actions", []))
        labels.append(
            {
                "window": n + 1,
                "task": f"Perform: {did}",
                "replicate": f"Replicate the following: {did}",
            }
        )
    return json.dumps({"labels": labels})


def _judge(req: ChatRequest) -> str:
    criteria = req.meta.get("criteria") or ["achieves", "coherent", "natural", "reasonable"]
    mark: dict[str, Any] = {"score": 5} if req.meta.get("graded") else {"ok": True}
    verdict = {c: {**mark, "reason": "scripted judge accepts"} for c in criteria}
    return json.dumps(
        {"verdicts": [{"example": n + 1, **verdict} for n in range(int(req.meta.get("count", 1)))]}
    )


def _self_eval(req: ChatRequest) -> str:
    """A try succeeded when it took exactly the reference's actions."""
    actions, reference = list(req.meta.get("actions") or []), list(req.meta.get("reference") or [])
    ok = bool(reference) and actions == reference
    why = "the actions match the task's solution" if ok else "the actions differ from the solution"
    return json.dumps({"success": ok, "reason": why})


def _reflect(req: ChatRequest) -> str:
    """What went wrong (the actions taken) and a plan (the reference) for the next try."""
    did = "; ".join(str(a) for a in req.meta.get("actions") or []) or "nothing"
    plan = json.dumps(list(req.meta.get("reference") or []))
    return f"I did {did}, which did not accomplish the task.\nPlan: {plan}"


def _value(req: ChatRequest) -> str:
    """High while the actions so far are the start of the reference, low once they leave it."""
    actions, reference = list(req.meta.get("actions") or []), list(req.meta.get("reference") or [])
    on_track = actions == reference[: len(actions)]
    return json.dumps({"score": 9 if on_track else 2, "reason": "scripted value"})


def _query(req: ChatRequest) -> str:
    return str(req.meta.get("instruction") or req.messages[-1].get("content", ""))[:200]


def _json_call(text: Any) -> str | None:
    for line in str(text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "name" in obj:
                return line
    return None


def _user_sim(req: ChatRequest) -> str:
    msgs = req.messages
    if len(msgs) >= 2 and msgs[-2].get("role") == "assistant" and _json_call(msgs[-2]["content"]):
        return "Done."  # the last message is the result of the call it just made
    if msgs and msgs[-1].get("role") == "user":
        return _json_call(msgs[-1].get("content")) or "ok"
    return "ok"


DEFAULT_HANDLERS: dict[str, Handler] = {
    "tasks": _tasks,
    "explore": _tasks,
    "act": _act,
    "backward": _backward,
    "judge": _judge,
    "query": _query,
    "user_sim": _user_sim,
    "self_eval": _self_eval,
    "reflect": _reflect,
    "value": _value,
}


class ScriptedModel:
    capabilities = Capabilities(json_schema=True, grammar=True, tools=False, seed=True)

    def __init__(
        self,
        handlers: dict[str, Handler] | None = None,
        replay: dict[str, dict[str, Any]] | None = None,
        name: str = "scripted",
        delay_s: float = 0.0,
        log_path: str | Path | None = None,
    ) -> None:
        self.name = name
        self.handlers = {**DEFAULT_HANDLERS, **(handlers or {})}
        self.replay = replay
        # Canned answers come from `request.meta` (the task's reference): the cache keys on it.
        # A replay answers from the recorded key alone, which leaves meta out.
        self.capabilities = replace(type(self).capabilities, reads_meta=replay is None)
        self.calls = 0
        self.delay_s = delay_s  # simulated latency, for resume and overhead tests
        self.log_path = Path(log_path) if log_path else None  # one line per backend call

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.log_path is not None:
            from lbi.models.cache import record_key

            with self.log_path.open("a") as f:
                f.write(f"{record_key(request)} {request.kind}\n")
        if self.replay is not None:
            from lbi.models.cache import record_key

            key = record_key(request)
            if key not in self.replay:
                raise ModelError(
                    f"scripted replay has no recorded answer for this {request.kind} request"
                )
            return ChatResponse.from_json(self.replay[key])
        handler = self.handlers.get(request.kind)
        text = "ok" if handler is None else handler(request)
        prompt = sum(_tokens(str(m.get("content") or "")) for m in request.messages)
        return ChatResponse(text=text, prompt_tokens=prompt, completion_tokens=_tokens(text))

    async def aclose(self) -> None:
        return None


def load_replay(path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"scripted replay file not found: {p}")
    out: dict[str, dict[str, Any]] = {}
    for line in p.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["key"]] = rec["response"]
    return out


@register("scripted")
def _factory(arg: str, config: Config) -> ScriptedModel:
    """`scripted`, or `scripted:replay=PATH`, `scripted:delay=0.05,log=PATH` (comma-separated);
    `name=NAME` gives it another name (`scripted-NAME`), e.g. for a committee of two."""
    opts = dict(part.split("=", 1) for part in arg.split(",") if "=" in part)
    unknown = set(opts) - {"replay", "delay", "log", "name"}
    if unknown or (arg and not opts):
        raise ModelError(
            f"bad scripted model options {arg!r}; use replay=PATH, delay=SECONDS, log=PATH, "
            "name=NAME"
        )
    return ScriptedModel(
        name=f"scripted-{opts['name']}" if "name" in opts else "scripted",
        replay=load_replay(opts["replay"]) if "replay" in opts else None,
        delay_s=float(opts.get("delay", 0.0)),
        log_path=opts.get("log"),
    )
