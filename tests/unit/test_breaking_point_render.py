"""The stress summary in Markdown and its latency/throughput chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from perfci.analysis.breaking_point import analyse
from perfci.measure.stress import StressPlan, StressRun
from perfci.render.stress import headline, stress_chart_svg, stress_markdown
from tests import builders


def stress_run() -> StressRun:
    samples, schedule = builders.step_load(builders.OFFERED, builders.RPS, builders.LATENCY)
    resources = builders.cpu(schedule, {"service": [10, 20, 40, 80, 97, 99], "locust": [5, 8, 15, 25, 28, 30]})
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=builders.SLOS, resources=resources)
    return StressRun(
        scenario="journeys",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        elapsed_s=75,
        stop_reason="broke at 64: GET /users/me p95 200.0 ms > 150 ms",
        plan=StressPlan(),
        bisected=[48],
        breaking_point=result,
    )


def test_headline_gives_breaking_point_knee_failure_and_saturation() -> None:
    text = headline(stress_run())
    assert text.startswith("**journeys**: ")
    assert "req/s within SLO (at 32 users)" in text
    assert "latency turns up at 32 users" in text
    assert "first failure at 64 users: GET /users/me p95" in text
    assert "saturated: service CPU 97 % (service)" in text


def test_markdown_has_a_row_per_step_and_round_trips_through_json() -> None:
    run = stress_run()
    assert StressRun.model_validate_json(run.model_dump_json()) == run
    markdown = stress_markdown([run])
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 6
    assert rows[4].endswith("ms > 150 ms |")
    assert "narrowed at 48" in markdown


def test_chart_is_inline_svg() -> None:
    chart = stress_chart_svg(stress_run())
    assert chart.startswith("<svg")
    ET.fromstring(chart)
    assert "offered load (users)" in chart
