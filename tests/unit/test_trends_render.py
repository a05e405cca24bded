"""The trends text table and SVG charts, from a synthetic history with a known step."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from perfci.analysis.trends import trend_report
from perfci.render.trends import trend_charts_svg, trends_text
from tests import builders


def test_text_names_the_change_point_commit_and_size() -> None:
    report = trend_report("journeys", builders.history(builders.step_at(37, 0.30), seed=4, noise=0.02))
    text = trends_text([report])
    assert text.startswith("journeys: 60 refreshes of main\n")
    assert "change points:" in text
    line = next(row for row in text.splitlines() if row.startswith("  - "))
    assert line.startswith("  - GET /users/me p95: regression +")
    assert f"step beginning at {37:040x}"[:-33] in line
    assert f"(after {36:040x}"[:-33] in line


def test_flat_history_says_no_change_points() -> None:
    report = trend_report("journeys", builders.history(np.full(20, 20.0), seed=1))
    assert "no change points" in trends_text([report])


def test_charts_are_stable_inline_svg() -> None:
    report = trend_report("journeys", builders.history(builders.step_at(37, 0.30), seed=4, noise=0.02))
    charts = trend_charts_svg(report)
    assert len(charts) == 2  # p95 of both endpoints
    for chart in charts:
        assert chart.startswith("<svg")
        ET.fromstring(chart)  # well-formed
    assert "+30% at" in charts[0] or "+29% at" in charts[0] or "+31% at" in charts[0]
    assert trend_charts_svg(report) == charts
