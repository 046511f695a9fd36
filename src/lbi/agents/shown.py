"""Which worked examples one episode's prompt shows, and where.

Each step's retrieved examples go into the prompt at that step, after the HISTORY so far, and
stay there: the next step's prompt is this one's HISTORY plus one entry, so a server's prefix
cache (llama.cpp, vLLM, hosted prompt caching) reuses them with everything before them instead
of processing them again (bench/local_agent.py). An example retrieved again is not repeated: it
is still in the prompt. Past `max_tokens` of examples in one episode, the earlier steps' go and
only this step's are shown (the prompt is processed once more from there); so are those of
steps HISTORY no longer shows. Every example retrieved for a step is in that step's prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lbi.tokens import estimate_tokens


@dataclass
class ShownExamples:
    max_tokens: int
    # HISTORY position (0-based step index) -> the examples first shown just before that step.
    blocks: dict[int, list[str]] = field(default_factory=dict)

    def show(self, at: int, examples: list[str], visible_from: int = 0) -> list[str]:
        """Record the examples retrieved before step `at` (HISTORY shows steps from
        `visible_from` on); return the ones to show now, those not in the prompt already."""
        self.blocks = {k: v for k, v in self.blocks.items() if visible_from <= k < at}
        seen = {text for block in self.blocks.values() for text in block}
        new = [e for e in dict.fromkeys(examples) if e not in seen]
        used = sum(estimate_tokens(t) for block in self.blocks.values() for t in block)
        if used + sum(estimate_tokens(e) for e in new) > self.max_tokens:
            self.blocks, new = {}, list(dict.fromkeys(examples))
        if new:
            self.blocks[at] = new
        return new

    def earlier(self, at: int) -> dict[int, list[str]]:
        """The blocks shown before step `at`, by step."""
        return {k: v for k, v in sorted(self.blocks.items()) if k < at}
