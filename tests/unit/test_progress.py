"""The trial progress display: the line's content, plain lines throttled, switched off, live on a terminal."""

from __future__ import annotations

import io

from perfci.measure.load import Progress
from perfci.measure.progress import PlainProgress, progress_line, trial_progress


def progress(elapsed: float, requests: int = 1950, p95: float | None = 38.24) -> Progress:
    return Progress("journeys", "candidate", 1, elapsed, 8.0, requests, 412.4, p95)


def test_line_names_scenario_trial_time_rate_and_p95() -> None:
    line = progress_line(progress(5.0), trials=6)
    assert line == "journeys candidate trial 2/6  5.0/8 s  412 req/s  p95 38.2 ms  (1,950 requests)"
    assert "p95 -" in progress_line(progress(0.5, p95=None), trials=6)


def test_plain_lines_at_most_every_interval_and_none_before_the_first_request() -> None:
    out = io.StringIO()
    now = [100.0]
    plain = PlainProgress(6, out, interval_s=5.0, clock=lambda: now[0])
    for step in range(12):  # every 0.5 s over 6 s
        now[0] = 100.0 + step * 0.5
        plain(progress(step * 0.5, requests=0 if step == 0 else 100 * step))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "0.5/8 s" in lines[0]
    assert "5.5/8 s" in lines[1]


def test_switched_off_gives_no_callback_and_a_pipe_gets_plain_lines() -> None:
    with trial_progress(False, 3) as callback:
        assert callback is None
    out = io.StringIO()
    with trial_progress(True, 3, out) as callback:
        assert isinstance(callback, PlainProgress)
        callback(progress(2.0))
    assert out.getvalue().startswith("perfci:   journeys candidate trial 2/3")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line_that_goes_away() -> None:
    out = Terminal()
    with trial_progress(True, 3, out) as callback:
        assert callback is not None
        assert not isinstance(callback, PlainProgress)
        callback(progress(1.0))
        callback(progress(2.0))
    text = out.getvalue()
    assert "1.0/8 s" in text
    assert "2.0/8 s" in text
