"""Progress for every stage: done/total, failed units, rate, ETA, model calls, cache hits,
tokens and money.

In a terminal it is a live one-line bar (sized to fit 100 columns); when stderr is a file or a
pipe (a log) it is a plain line at the start, every `LBI_PROGRESS_EVERY` seconds (default 30)
even while nothing finishes, and at the end, so a log shows how far a long stage is.

The ETA comes from the units finished in *this* session (units a resumed run had already done
count as done, not as speed), averaged over the whole session: an episode of a local model can
take minutes, longer than any sliding window, which left rich's own estimate blank.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
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
)
from rich.text import Text

if TYPE_CHECKING:
    from lbi.models.accounting import Accountant

console = Console(stderr=True)
DESCRIPTION_WIDTH = 18


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _tokens(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


class Meter:
    """Counts units done this session; says the rate and the time left at that rate."""

    def __init__(self, total: int, done: int = 0, clock: Callable[[], float] = time.monotonic):
        self.total, self.done, self.fresh = total, done, 0
        self.failed = 0  # units that finished this session as failures (counted in done too)
        self._clock = clock
        self.start = clock()

    def advance(self, n: int = 1, failed: int = 0) -> None:
        self.done += n
        self.fresh += n
        self.failed += failed

    def elapsed(self) -> float:
        return self._clock() - self.start

    def rate(self) -> float | None:
        """Units a second over this session, None until one has finished."""
        elapsed = self.elapsed()
        return self.fresh / elapsed if self.fresh and elapsed > 0 else None

    def eta(self) -> str:
        if self.done >= self.total:
            return "0:00:00"
        rate = self.rate()
        return _clock((self.total - self.done) / rate) if rate else "?"

    def rate_text(self) -> str:
        rate = self.rate()
        if rate is None:
            return "-/min"
        return f"{rate * 60:.1f}/min" if rate < 1 else f"{rate:.1f}/s"


def spend_text(accountant: Accountant | None, compact: bool = False) -> str:
    """Calls, cache hits, tokens and money so far; `compact` for the bar (no cache hits)."""
    if accountant is None:
        return ""
    t: dict[str, Any] = accountant.snapshot()["total"]
    tokens = _tokens(t["prompt_tokens"] + t["completion_tokens"])
    cost = t["cost_usd"]
    if compact:
        money = f"${cost:.2f}" if cost >= 1 else f"${cost:.4f}"
        return f"{_tokens(t['calls'])} calls · {tokens} tok · {money}"
    return f"{t['calls']} calls ({t['cache_hits']} cached) · {tokens} tok · ${cost:.4f}"


def status_line(description: str, meter: Meter, accountant: Accountant | None) -> str:
    """The periodic line written to a log."""
    share = f" ({meter.done / meter.total:.0%})" if meter.total else ""
    failed = f" · {meter.failed} failed" if meter.failed else ""
    spend = spend_text(accountant)
    return (
        f"{description}: {meter.done}/{meter.total}{share}{failed} · {_clock(meter.elapsed())} · "
        f"{meter.rate_text()} · eta {meter.eta()}" + (f" · {spend}" if spend else "")
    )


class _Eta(ProgressColumn):
    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter

    def render(self, task: Task) -> Text:
        return Text(f"eta {self.meter.eta()}", style="cyan")


class _Failed(ProgressColumn):
    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter

    def render(self, task: Task) -> Text:
        return Text(f"{self.meter.failed} failed" if self.meter.failed else "", style="red")


class _Spend(ProgressColumn):
    def __init__(self, accountant: Accountant | None) -> None:
        super().__init__()
        self.accountant = accountant

    def render(self, task: Task) -> Text:
        return Text(spend_text(self.accountant, compact=True), style="dim")


def _short(description: str) -> str:
    if len(description) <= DESCRIPTION_WIDTH:
        return description
    return description[: DESCRIPTION_WIDTH - 1] + "…"


@contextmanager
def stage_progress(
    description: str, total: int, accountant: Accountant | None = None, *, done: int = 0
) -> Iterator[Callable[..., None]]:
    """Yields an `advance(n=1, failed=0)` callable (`failed`: how many of the n units failed);
    `done` units were finished by an earlier session."""
    meter = Meter(total, done)
    if console.is_terminal:
        with _live(description, meter, accountant) as advance:
            yield advance
        return
    every = float(os.environ.get("LBI_PROGRESS_EVERY", "30"))
    lock, stop = threading.Lock(), threading.Event()

    def say() -> None:
        with lock:
            console.print(status_line(description, meter, accountant), markup=False, soft_wrap=True)

    def beat() -> None:
        while not stop.wait(every):
            say()

    say()
    ticker = threading.Thread(target=beat, name="lbi-progress", daemon=True)
    ticker.start()
    try:
        yield lambda n=1, failed=0: meter.advance(n, failed)
    finally:
        stop.set()
        ticker.join()
        say()


@contextmanager
def _live(description: str, meter: Meter, accountant: Accountant | None) -> Iterator[Any]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=10),
        MofNCompleteColumn(),
        _Failed(meter),
        TimeElapsedColumn(),
        _Eta(meter),
        _Spend(accountant),
        console=console,
        transient=False,
        refresh_per_second=4,
    )
    with progress:
        tid = progress.add_task(_short(description), total=meter.total, completed=meter.done)

        def advance(n: int = 1, failed: int = 0) -> None:
            meter.advance(n, failed)
            progress.advance(tid, n)

        yield advance
