"""Resource peaks per source inside a window, docker's memory sizes, and a live process sampled for real."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from perfci.measure.monitor import ResourceMonitor, _bytes, peaks
from perfci.targets.base import Target


def frame(rows: list[tuple[float, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["t_s", "source", "cpu_percent", "rss_mb"])


def test_peaks_per_source_inside_a_half_open_window() -> None:
    data = frame(
        [
            (0.5, "service", 400.0, 900.0),  # warm-up: outside
            (1.0, "service", 50.0, 100.0),
            (1.5, "service", 70.0, 120.0),
            (2.0, "locust", 30.0, 60.0),
            (2.5, "locust", 10.0, 80.0),
            (3.0, "service", 999.0, 999.0),  # the window's end: outside
        ]
    )
    result = {p.source: p for p in peaks(data, 1.0, 3.0)}
    assert set(result) == {"locust", "service"}
    assert (result["service"].cpu_percent_peak, result["service"].cpu_percent_mean) == (70.0, 60.0)
    assert result["service"].rss_mb_peak == 120.0
    assert (result["locust"].cpu_percent_peak, result["locust"].cpu_percent_mean) == (30.0, 20.0)
    assert [p.source for p in peaks(data)] == ["locust", "service"]
    assert {p.source: p.cpu_percent_peak for p in peaks(data)}["service"] == 999.0


def test_no_samples_no_peaks() -> None:
    assert peaks(frame([]), 0.0, 10.0) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5MiB", 12.5 * 1024**2),
        ("1.2GiB", 1.2 * 1024**3),
        ("512KiB", 512 * 1024),
        ("900B", 900.0),
        ("3kB", 3000.0),
        ("1.5MB", 1.5e6),
        ("2GB", 2e9),
        (" 7 ", 7.0),
        ("--", 0.0),
        ("", 0.0),
    ],
)
def test_docker_memory_sizes(text: str, expected: float) -> None:
    assert _bytes(text) == pytest.approx(expected)


def test_a_busy_process_shows_its_cpu_and_memory() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        monitor = ResourceMonitor(Target(kind="url", base_url="http://127.0.0.1:1", pids=(busy.pid,)), interval_s=0.2)
        monitor.start()
        time.sleep(1.5)
        monitor.stop()
    finally:
        busy.kill()
        busy.wait()
    data = monitor.frame()
    service = {p.source: p for p in peaks(data)}["service"]
    assert service.cpu_percent_peak > 30.0  # a spinning loop; the first read is the primed 0
    assert service.rss_mb_peak > 1.0
    assert set(data["source"]) == {"service", "locust"}
