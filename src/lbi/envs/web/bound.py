"""Bounds on observing a page, so a huge or hostile page costs one short step.

Why: reading a 50 MB page's accessibility tree held an episode for ~6 minutes (finding 9 of
issue 31): Chromium builds a node for every element and line of text, the tree crosses CDP as
one JSON message, and BrowserGym's flattening is quadratic in the worst case. The agent sees
6,000 characters of it anyway. So, before extraction, each frame's DOM past a budget of
elements and text is removed (and a page still loading is stopped); after extraction, the tree
is pruned to a node count, a depth and a name length; and a deadline skips the optional parts
(DOM snapshot, screenshot, more frames) once it has passed. Whatever was cut is named in the
observation. A page already stuck in its own script is replaced before any of this
(PageSession.ensure_responsive). What this does not bound: a page script that starts blocking
Chromium's main thread after that probe (Playwright's evaluate has no timeout), or one that
regrows the DOM between the trim and the read (the pruning still bounds the Python side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    # A datasette page of 100 rows is ~1,000 elements; the agent sees 6,000 characters of it.
    # Chromium's accessibility tree costs ~1 ms per element over CDP, hence these sizes.
    elements: int = 5_000  # DOM elements kept, all frames together
    text_chars: int = 200_000  # characters of text nodes kept, all frames together
    ax_nodes: int = 20_000  # accessibility nodes flattened (text runs add nodes of their own)
    depth: int = 200  # nesting flattened (BrowserGym's flattening recurses)
    name_chars: int = 2_000  # one node's name or value (aria-label="<50 MB>")
    seconds: float = 20.0  # past this, optional parts are skipped


@dataclass
class Budget:
    """What is left of the limits while one observation is taken, and what was cut."""

    limits: Limits
    started: float = field(default_factory=time.monotonic)
    cuts: list[str] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return time.monotonic() - self.started > self.limits.seconds

    def note(self) -> str:
        return "; ".join(dict.fromkeys(self.cuts))


# Walk the frame's DOM in document order; at the first element or text run over the budget,
# stop the page loading (the parser would add more) and delete everything after that point.
_TRIM_JS = """([maxElements, maxChars]) => {
  const root = document.documentElement;
  if (!root) return [0, 0, false];
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
  let elements = 0, chars = 0, node = walk.currentNode, cutBefore = null, cutAfter = null;
  for (; node; node = walk.nextNode()) {
    if (node.nodeType === Node.TEXT_NODE) {
      const room = maxChars - chars;
      if (node.data.length > room) { node.data = node.data.slice(0, Math.max(0, room)); cutAfter = node; break; }
      chars += node.data.length;
    } else if (++elements > maxElements) { cutBefore = node; break; }
  }
  if (!cutBefore && !cutAfter) return [elements, chars, false];
  if (document.readyState === 'loading') window.stop();
  const range = document.createRange();
  if (cutBefore) range.setStartBefore(cutBefore); else range.setStartAfter(cutAfter);
  range.setEnd(root, root.childNodes.length);
  range.deleteContents();
  return [Math.min(elements, maxElements), Math.min(chars, maxChars), true];
}"""


def trim_page(page: Any, budget: Budget) -> None:
    """Cut every frame's DOM to what is left of the element and text budget."""
    elements, chars = budget.limits.elements, budget.limits.text_chars
    for frame in page.frames:
        if budget.late:
            budget.cuts.append(f"frames left unread after {budget.limits.seconds:.0f} s")
            break
        try:
            used_e, used_c, cut = frame.evaluate(_TRIM_JS, [max(elements, 1), max(chars, 0)])
        except Exception:  # a detached or blocked frame: the extraction skips it too
            continue
        elements, chars = elements - used_e, chars - used_c
        if cut:
            budget.cuts.append(
                f"the page is larger than {budget.limits.elements} elements or "
                f"{budget.limits.text_chars} characters of text; the rest was removed from it"
            )


def prune_axtree(axtree: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Keep the first `ax_nodes` nodes in document order, `depth` deep, names cut short."""
    nodes = axtree.get("nodes") or []
    if not nodes:
        return axtree
    lim = budget.limits
    by_id = {n["nodeId"]: n for n in nodes}
    kept: dict[str, dict[str, Any]] = {}
    stack = [(nodes[0], 0)]
    too_deep = False
    while stack and len(kept) < lim.ax_nodes:
        node, depth = stack.pop()
        if node["nodeId"] in kept:
            continue
        kept[node["nodeId"]] = node
        children = [by_id[c] for c in node.get("childIds", []) if c in by_id]
        too_deep |= bool(children) and depth >= lim.depth
        if depth < lim.depth:
            stack.extend((c, depth + 1) for c in reversed(children))
    long_names = 0
    for node in kept.values():
        node["childIds"] = [c for c in node.get("childIds", []) if c in kept]
        for key in ("name", "value"):
            v = node.get(key, {}).get("value")
            if isinstance(v, str) and len(v) > lim.name_chars:
                node[key]["value"] = v[: lim.name_chars] + "..."
                long_names += 1
    if len(kept) < len(nodes) and (stack or too_deep):
        budget.cuts.append(f"{len(nodes) - len(kept)} accessibility nodes left out")
    if long_names:
        budget.cuts.append(f"{long_names} names cut to {lim.name_chars} characters")
    return {**axtree, "nodes": list(kept.values())}  # root first, as the flattening expects
