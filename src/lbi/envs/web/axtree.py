"""Page -> text observation: BrowserGym's marked accessibility tree, flattened and truncated.

We reuse BrowserGym's own pieces (`_pre_extract` marks every element with a `bid`,
`extract_merged_axtree` reads the accessibility tree of every frame, `flatten_axtree_to_str`
prints it with `[bid]` ids) so an agent trained on our observations reads BrowserGym's
format. What we leave out, for speed: the DOM snapshot (needed only to drop off-screen
elements, `visible_only`) and the screenshot are taken only when asked. BrowserGym takes both every step plus a fixed
0.5 s sleep; that is most of its step time.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any

from lbi.envs.web.bound import Budget, Limits, prune_axtree, trim_page

BID_ATTRIBUTE = "bid"  # browsergym.core.constants.BROWSERGYM_ID_ATTRIBUTE
# InlineTextBox repeats the text of its parent StaticText/button line: pure noise for a model.
IGNORED_ROLES = ["LineBreak", "InlineTextBox"]
_BID_RE = re.compile(r"^\s*\[([a-zA-Z0-9]+)\]", re.MULTILINE)
_RETRY_ERRORS = (
    "detached",
    "not found",
    "context was destroyed",
    "without a bid",
    "Cannot read properties",
)


@dataclass
class PageView:
    """One observation of a page: the flattened tree plus what the env needs to judge actions."""

    url: str
    title: str
    tree: str  # untruncated
    bids: set[str] = field(default_factory=set)
    focused: str = ""
    screenshot_png_b64: str | None = None
    cut: str = ""  # what the bounds left out (bound.py); '' when the page was read in full


def extract(
    page: Any, visible_only: bool = False, screenshot: bool = False, limits: Limits | None = None
) -> PageView:
    """Mark the page, read its accessibility tree, flatten it. Retries on frame races.

    A page over `limits` is cut first and the view says so (bound.py)."""
    from browsergym.core.observation import (
        MarkingError,
        _post_extract,
        _pre_extract,
        extract_dom_extra_properties,
        extract_dom_snapshot,
        extract_focused_element_bid,
        extract_merged_axtree,
    )
    from browsergym.utils.obs import flatten_axtree_to_str
    from playwright.sync_api import Error as PlaywrightError

    budget = Budget(limits or Limits())
    trim_page(page, budget)
    for tries_left in reversed(range(3)):
        try:
            _pre_extract(page, tags_to_mark="standard_html", lenient=tries_left == 0 or budget.late)
            axtree = prune_axtree(extract_merged_axtree(page), budget)
            extra = None
            if visible_only and budget.late:
                budget.cuts.append("visible_only skipped: the page took too long")
                visible_only = False
            if visible_only:
                scale = getattr(page, "_bgym_scale_factor", 1.0)
                extra = extract_dom_extra_properties(extract_dom_snapshot(page), scale_factor=scale)
            focused = extract_focused_element_bid(page) or ""
            _post_extract(page)
            break
        except (PlaywrightError, MarkingError) as e:
            if tries_left == 0 or budget.late or not any(s in str(e) for s in _RETRY_ERRORS):
                raise
            time.sleep(0.1)
    tree = flatten_axtree_to_str(
        axtree,
        extra_properties=extra,
        filter_visible_only=visible_only,
        ignored_roles=IGNORED_ROLES,
    )
    if screenshot and budget.late:
        budget.cuts.append("screenshot skipped: the page took too long")
        screenshot = False
    shot = base64.b64encode(page.screenshot()).decode() if screenshot else None
    return PageView(
        url=page.url,
        title=page.title()[: budget.limits.name_chars],
        tree=tree,
        bids=set(_BID_RE.findall(tree)),
        focused=focused,
        screenshot_png_b64=shot,
        cut=budget.note(),
    )


def truncate(text: str, budget: int) -> str:
    """Cut at a line boundary within `budget` chars, and say so (the model must know)."""
    if len(text) <= budget:
        return text
    cut = text.rfind("\n", 0, max(0, budget - 60))
    kept = text[: cut if cut > 0 else max(0, budget - 60)]
    dropped = text.count("\n", len(kept)) + 1
    return f"{kept}\n[... {dropped} more lines cut to fit {budget} chars ...]"


def render(
    goal: str, view: PageView, budget: int, error: str = "", chat: list[str] | None = None
) -> str:
    """The text the agent sees: goal, page, tree, and the last error if any."""
    parts = [f"Goal: {goal}", f"URL: {view.url}", f"Title: {view.title}"]
    if chat:
        parts.append("Messages you sent: " + " | ".join(chat[-3:]))
    if error:
        parts.append(f"Error from the last action: {error}")
    if view.cut:
        parts.append(f"Page cut: {view.cut}")
    if view.focused:
        parts.append(f"Focused element: [{view.focused}]")
    head = "\n".join(parts) + "\n\nAccessibility tree:\n"
    text = head + truncate(view.tree, max(0, budget - len(head)))
    return text if len(text) <= budget else truncate(text, budget)  # a long goal or URL
