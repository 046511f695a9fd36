"""Prompts are data: one Jinja2 template per purpose, rendered by one function.

The parser for each prompt's answer lives next to the code that sends it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lbi", "prompts"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **context: Any) -> str:
    """Render `prompts/<name>.j2`; a missing variable is an error, not a blank."""
    return _env().get_template(f"{name}.j2").render(**context).strip()
