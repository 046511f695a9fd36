"""Benchmark: llama.cpp slots for the embedded model, 1 against 4, on interleaved episodes.

Four episodes take turns, four steps each (the way the rollout and eval harness send them):
every step's prompt is a shared system prompt, the episode's own objective and its growing
history. With one slot each episode's turn evicts the previous episode's prefix; with four,
each keeps its own. Same prompts, same greedy settings, both sides in this run; the answers of
the two sides are compared text for text.

    .venv/bin/python bench/local_slots.py [--episodes 4] [--steps 4]

Prints the figures and replaces the "## Local model slots" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lbi.config import Config
from lbi.models.base import ChatRequest
from lbi.models.registry import make_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine, write_section

HEADING = "Local model slots"
SYSTEM = "You are an agent acting in a SQL database. " + " ".join(
    f"Rule {k}: check table {k} before you change it." for k in range(40)
)


def request(episode: int, step: int) -> ChatRequest:
    history = "".join(
        f"\n{s + 1}. ACTION: SELECT * FROM t{episode}_{s}\n   RESULT: {s} rows in t{episode}_{s}"
        for s in range(step)
    )
    objective = " ".join(f"col{episode}_{k}" for k in range(50))
    user = f"OBJECTIVE: report {objective}\n\nHISTORY:{history or ' (none)'}\n\nOBSERVATION:\nok"
    return ChatRequest(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        max_tokens=16,
    )


async def interleaved(slots: int, episodes: int, steps: int) -> tuple[float, list[str]]:
    cfg = Config.model_validate({"models": {"local": {"threads": 1, "max_parallel": slots}}})
    model = make_model("local", cfg)
    await model.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=2))
    start, texts = time.perf_counter(), []
    for step in range(steps):  # every episode takes its step before any takes the next
        answers = await asyncio.gather(*(model.complete(request(e, step)) for e in range(episodes)))
        texts += [a.text for a in answers]
    return time.perf_counter() - start, texts


def main(episodes: int, steps: int) -> str:
    where = machine()
    one_s, one = asyncio.run(interleaved(1, episodes, steps))
    four_s, four = asyncio.run(interleaved(4, episodes, steps))
    same = sum(a == b for a, b in zip(one, four, strict=True))
    return "\n".join(
        [
            f"`bench/local_slots.py`: {where}. SmolLM2-135M (GGUF, xllamacpp), 1 thread, "
            f"{episodes} episodes x {steps} steps taking turns, 16 answer tokens a step.",
            "",
            "| slots | wall s | speed-up |",
            "|---|---|---|",
            f"| 1 | {one_s:.1f} | 1.00x |",
            f"| 4 | {four_s:.1f} | {one_s / four_s:.2f}x |",
            "",
            f"Greedy answers identical between the two: {same}/{len(one)}.",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    body = main(args.episodes, args.steps)
    print(f"## {HEADING}\n\n{body}")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}")
