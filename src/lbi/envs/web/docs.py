"""Documentation every web environment shares: the action reference, written from the action
set itself. A site's own pages become docs in crawl.py; MiniWoB's task families in
miniwob_docs.py."""

from __future__ import annotations

from lbi.envs.base import ActionSpace
from lbi.types import Doc


def action_reference(env: str, space: ActionSpace) -> Doc:
    text = (
        "# Web actions\n\n"
        "Each step is one call. The observation is the page's accessibility tree; every element "
        "you can act on has an id in square brackets, e.g. `[14] textbox 'Name'` or "
        "`[15] button 'Submit'`. Pass that id as a string: `fill('14', 'Ann')`, `click('15')`. "
        "Ids change when the page changes, so read them from the latest observation.\n\n"
        f"{space.description}"
    )
    return Doc(env=env, source="web#actions", title="Web actions", text=text)
