"""Shows a running trial: scenario, trial k/n, elapsed/total, live requests/s and p95, from the Locust feed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from perfci.measure.load import Progress, ProgressCallback

PLAIN_INTERVAL_S = 5.0  # without a terminal (CI logs) one line every few seconds is enough and stays readable


def progress_line(progress: Progress, trials: int) -> str:
    """`journeys candidate trial 2/6  5.0/8 s  412 req/s  p95 38.2 ms  (1,950 requests)`."""
    p95 = f"p95 {progress.p95_ms:.1f} ms" if progress.p95_ms is not None else "p95 -"
    return (
        f"{progress.scenario} {progress.arm} trial {progress.index + 1}/{trials}  "
        f"{progress.elapsed_s:.1f}/{progress.total_s:g} s  {progress.rps:,.0f} req/s  {p95}  "
        f"({progress.requests:,} requests)"
    )


class PlainProgress:
    """A plain line at most every `interval_s` seconds: for logs, where a redrawn line would be noise."""

    def __init__(
        self,
        trials: int,
        stream: TextIO,
        interval_s: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trials = trials
        self.stream = stream
        self.interval_s = interval_s
        self.clock = clock
        self.last: float | None = None

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        if progress.requests == 0 or (self.last is not None and now - self.last < self.interval_s):
            return  # nothing to say before the first request, nor more often than the interval
        self.last = now
        print(f"perfci:   {progress_line(progress, self.trials)}", file=self.stream, flush=True)


class LiveProgress:
    """One line redrawn in place on a terminal; it disappears when the trial ends."""

    def __init__(self, trials: int, console: Console) -> None:
        self.trials = trials
        self.live = Live(Text(""), console=console, transient=True, auto_refresh=False)

    def __call__(self, progress: Progress) -> None:
        self.live.update(Text(progress_line(progress, self.trials)), refresh=True)


@contextmanager
def trial_progress(enabled: bool, trials: int, stream: TextIO | None = None) -> Iterator[ProgressCallback | None]:
    """The callback for one trial: live on a terminal, plain lines otherwise, None when switched off."""
    if not enabled:
        yield None
        return
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        yield PlainProgress(trials, out)
        return
    display = LiveProgress(trials, Console(file=out))
    with display.live:
        yield display
