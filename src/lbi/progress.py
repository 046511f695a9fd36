"""Progress bars with ETA, model calls, cache hits, tokens and money, for every stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from lbi.models.accounting import Accountant

console = Console(stderr=True)


class _Spend(ProgressColumn):
    def __init__(self, accountant: Accountant | None) -> None:
        super().__init__()
        self.accountant = accountant

    def render(self, task: Task) -> Text:
        if self.accountant is None:
            return Text("")
        t: dict[str, Any] = self.accountant.snapshot()["total"]
        return Text(
            f"calls {t['calls']} (cache {t['cache_hits']}) · tok {t['prompt_tokens'] + t['completion_tokens']:,}"
            f" · ${t['cost_usd']:.4f}",
            style="dim",
        )


@contextmanager
def stage_progress(
    description: str, total: int, accountant: Accountant | None = None
) -> Iterator[Any]:
    """Yields an `advance(n=1)` callable."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        _Spend(accountant),
        console=console,
        transient=False,
        refresh_per_second=4,
    )
    with progress:
        tid = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(tid, n)

        yield advance
