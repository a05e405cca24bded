"""The HTML report is one self-contained file: inline SVG charts, every table, untrusted text escaped."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from perfci.render.charts import cdf_points
from perfci.render.charts_data import ChartsData, resource_series, trial_series
from perfci.render.html import render_html
from perfci.render.markdown import render_comment
from tests.golden.fixtures import endpoint, no_baseline, regression


def _charts_data() -> ChartsData:
    rng = np.random.default_rng(7)
    trials = []
    resources = []
    for arm in ("base", "candidate"):
        for index in range(2):
            samples = pd.DataFrame(
                {"start_s": np.sort(rng.uniform(0, 10, 2000)), "latency_ms": rng.lognormal(2, 0.4, 2000)}
            )
            trials.append(trial_series(samples, "journeys", arm, index))
            frame = pd.DataFrame(
                {
                    "t_s": np.arange(10.0),
                    "source": ["service"] * 10,
                    "cpu_percent": rng.uniform(40, 90, 10),
                    "rss_mb": rng.uniform(140, 150, 10),
                }
            )
            resources += resource_series(frame, "journeys", arm, index)
    return ChartsData(tuple(trials), tuple(resources))


def test_trial_series_bins_rate_and_p95() -> None:
    samples = pd.DataFrame({"start_s": [0.1, 0.2, 0.3, 1.5, 3.2], "latency_ms": [1.0, 2.0, 3.0, 10.0, 5.0]})
    series = trial_series(samples, "s", "base", 1)
    assert series.t_s == (0.0, 1.0, 2.0, 3.0)
    assert series.rps == (3.0, 1.0, 0.0, 1.0)
    assert series.p95_ms[0] == np.quantile([1.0, 2.0, 3.0], 0.95)
    assert np.isnan(series.p95_ms[2])


def test_cdf_points_reach_one() -> None:
    xs, ys = cdf_points([1, 2, 4, 8, 16], [0, 3, 1, 0])
    assert xs == [4, 8]
    assert ys == [0.75, 1.0]


def test_report_is_self_contained_with_charts() -> None:
    html = render_html(regression(), _charts_data())
    # 6 endpoint CDFs + the trial timeline + the resource chart.
    assert html.count("<svg") == 8
    assert not re.search(r"<script|<link|<iframe|\bsrc=|@import", html, flags=re.IGNORECASE)
    assert "http://" not in html.replace("http://www.w3.org/", "")
    assert "https://" not in html
    for heading in (
        "Every metric",
        "Noise floor",
        "SLOs",
        "Errors by kind",
        "Trials over time",
        "Resources",
        "PostgreSQL",
    ):
        assert f"<h3>{heading}" in html


def test_no_baseline_report_has_absolute_figures() -> None:
    html = render_html(no_baseline())
    assert "no baseline: absolute figures and SLOs only" in html
    assert "Every metric" not in html
    assert html.count("<svg") == 2  # the PR's CDFs only


def test_untrusted_names_are_escaped_in_tables_and_charts() -> None:
    comparison = regression()
    scenario = comparison.scenarios[0]
    hostile = endpoint("GET /<script>alert(1)</script>/$x$", 1, 2, 0, "no_change")
    comparison = comparison.model_copy(update={"scenarios": [scenario.model_copy(update={"endpoints": [hostile]})]})
    html = render_html(comparison)
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_reports_name_the_cpus_idle_state_only_where_it_was_recorded() -> None:
    held = regression()
    assert held.candidate.environment is not None
    unrecorded_env = held.candidate.environment.model_copy(update={"cpu_idle": "not recorded"})
    candidate = held.candidate.model_copy(update={"environment": unrecorded_env})
    unrecorded = held.model_copy(update={"candidate": candidate})

    assert "CPUs held awake" in render_html(held)
    assert "CPUs held awake" in render_comment(held)
    assert "CPUs" not in render_html(unrecorded)
    assert "CPUs" not in render_comment(unrecorded)


def test_a_not_comparable_report_shows_the_stored_figures_without_verdicts() -> None:
    from tests.golden.fixtures import FIXTURES

    html = render_html(FIXTURES["not_comparable"]())

    assert "stored baseline of another testbed, not comparable (measured on cpu_model Intel Xeon 8370C" in html
    assert "<th>stored p50</th><th>stored p95</th>" in html
    assert "8.10 ms" in html  # the stored p50 of GET /users, beside this run's
    assert ">regression<" not in html
    assert ">improvement<" not in html
