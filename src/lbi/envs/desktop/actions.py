"""The desktop action set: one Python-style call per step, parsed without evaluating it.

Elements are named by the id printed in the latest observation (`click(14)`), or by their
exact accessible name (`click('Sort Ascending')`), which is what a reference solution written
before the episode can know. Keys use xdotool's names: `key('ctrl+s')`, `key('ctrl+Home Down')`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from lbi.envs.base import ActionSpace

# verb -> argument kinds: "ref" (id or name), "str", "int"
VERBS: dict[str, tuple[str, ...]] = {
    "click": ("ref",),
    "set_text": ("ref", "str"),
    "select": ("ref",),
    "focus": ("ref",),
    "type": ("str",),
    "key": ("str",),
    "click_xy": ("int", "int"),
    "wait": (),
    "screenshot": (),
    "save": (),
    "done": (),
}

DESCRIPTION = """\
You operate a desktop application (LibreOffice Calc or Writer, or the Mousepad text editor) \
on a virtual screen. The observation is the focused window's accessibility tree: one element \
a line, `[id] role 'name' value='...' (states)`, indented by nesting; in a spreadsheet only \
non-empty cells of the top-left area are listed, by their address (e.g. `cell 'B3'`).
One action per step:
- click(ID) press a button, menu, menu item, tab or check box, or click a cell or text
- set_text(ID, "text") replace the text of an editable field
- select(ID) select an item in a list, tab list or combo box
- focus(ID) give an element the keyboard focus
- type("text") type text at the keyboard focus; "\\n" presses Enter, "\\t" Tab
- key("combo") press keys, xdotool names, several separated by spaces: key("ctrl+Home Down"), \
key("ctrl+b"), key("Escape")
- click_xy(X, Y) click a screen position (fallback)
- wait() let the application catch up for a second (a dialog that is still opening)
- screenshot() take a picture of the screen (returned in the step's info, for a model that sees)
- save() save the document in its current file and format (Ctrl+S)
- done() finish the episode; the saved files are checked, so save() first
ID is the number in square brackets, or an element's exact name in quotes: click('Bold').
In a spreadsheet, key("ctrl+Home") goes to A1 and arrow keys move between cells; typing into \
a cell and pressing Enter stores the value or formula (formulas start with =)."""

# An element is its number or its exact name in quotes, as the description says and `parse` reads.
_REF = '([0-9]+ | "\'" [^\'\\n]+ "\'" | "\\"" [^"\\n]+ "\\"")'
GRAMMAR = (
    f'("click(" {_REF} ")") | ("select(" {_REF} ")") | ("focus(" {_REF} ")") '
    f'| ("set_text(" {_REF} ", \\"" [^"\\n]* "\\")") | ("type(\\"" [^"\\n]* "\\")") '
    '| ("key(\\"" [a-zA-Z0-9_+ ]+ "\\")") | ("click_xy(" [0-9]+ ", " [0-9]+ ")") '
    '| "wait()" | "screenshot()" | "save()" | "done()"'
)


@dataclass
class Action:
    verb: str
    args: list[object]


def action_space() -> ActionSpace:
    return ActionSpace(
        description=DESCRIPTION,
        grammar=GRAMMAR,
        examples=['key("ctrl+Home")', 'type("42\\n")', "click(12)", "save()", "done()"],
        finish="done()",
    )


def parse(text: str) -> Action | str:
    """An Action, or the reason the text is not one (shown to the agent as an error)."""
    src = text.strip()
    if not src:
        return "empty action"
    try:
        node = ast.parse(src, mode="eval").body
    except SyntaxError:
        return f"cannot parse {src[:80]!r}; write one call such as click(12)"
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.keywords:
        return f"not an action call: {src[:80]!r}"
    verb = node.func.id
    if verb not in VERBS:
        return f"unknown action {verb!r}; known: {', '.join(VERBS)}"
    kinds = VERBS[verb]
    if len(node.args) != len(kinds):
        return f"{verb} takes {len(kinds)} argument(s), got {len(node.args)}"
    args: list[object] = []
    for kind, arg in zip(kinds, node.args, strict=True):
        if not isinstance(arg, ast.Constant):
            return f"{verb}: arguments must be literals"
        value = arg.value
        if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"{verb}: expected a number, got {value!r}"
        if kind == "str" and not isinstance(value, str):
            return f"{verb}: expected a string, got {value!r}"
        if kind == "ref" and not isinstance(value, (int, str)):
            return f"{verb}: expected an element id or name, got {value!r}"
        args.append(value)
    return Action(verb, args)
