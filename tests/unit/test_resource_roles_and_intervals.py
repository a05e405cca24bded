"""The resource table has a row per role and arm; confidence intervals too wide to read say so."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from perfci.collect import resource_peaks
from perfci.measure.monitor import role_of
from perfci.model import MetricComparison, ResourcePeak, ScenarioComparison
from perfci.render import format as fmt
from perfci.render.markdown import _resources_table
from perfci.render.terminal import _resources_table as terminal_resources_table


def metric(change: float, low: float, high: float) -> MetricComparison:
    return MetricComparison(
        metric="p95", base=100.0, candidate=100.0 * (1 + change), change=change, ci_low=low, ci_high=high,
        p_value=0.5, p_adjusted=0.5, min_effect=0.05, verdict="inconclusive",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        pytest.param(-1.0, 4493273.076, False, id="three pairs: -100 % ... +449327307.6 %"),
        pytest.param(-0.6, 1.0, False, id="a factor of five between the ends"),
        pytest.param(-0.2, math.inf, False, id="unbounded"),
        pytest.param(math.nan, 0.1, False, id="not a number"),
        pytest.param(0.081, 0.203, True, id="a usual interval"),
        pytest.param(1.4, 1.6, True, id="a large change measured tightly"),
        pytest.param(-0.4, 0.6, True, id="wide but within a factor of four"),
    ],
)
def test_an_interval_is_informative_within_a_factor_of_four(low: float, high: float, expected: bool) -> None:
    assert fmt.informative(metric(0.1, low, high)) is expected


def test_an_uninformative_interval_prints_as_too_few_pairs() -> None:
    assert fmt.change_with_ci(metric(0.031, -1.0, 4493273.076)) == "p95 +3.1 % (CI: too few pairs)"
    assert fmt.ci_text(metric(0.031, -1.0, 4493273.076)) == "too few pairs"
    assert fmt.change_with_ci(metric(0.142, 0.081, 0.203)) == "p95 +14.2 % (+8.1 % … +20.3 %)"


@pytest.mark.parametrize(
    ("source", "role"),
    [
        ("perfci-3f2a9c81d0_app_1", "service"),  # compose v1 container name of an older run
        ("perfci-3f2a9c81d0-db-1", "database"),  # compose v2
        ("service", "service"),
        ("locust", "locust"),
        ("someone-else_app_1", "someone-else_app_1"),
    ],
)
def test_container_names_of_older_runs_map_to_their_role(source: str, role: str) -> None:
    assert role_of(source) == role


def test_peaks_group_every_trials_containers_by_role() -> None:
    rows = []
    for trial in range(3):  # a fresh stack per trial used to name new containers each time
        project = f"perfci-{trial:010x}"
        rows += [
            (1.0, f"{project}_app_1", 50.0 + trial, 100.0),
            (1.0, f"{project}_db_1", 10.0, 40.0 + trial),
            (1.0, "locust", 30.0, 60.0),
        ]
    peaks = resource_peaks(pd.DataFrame(rows, columns=["t_s", "source", "cpu_percent", "rss_mb"]))
    assert [(p.source, p.cpu_percent_peak, p.rss_mb_peak) for p in peaks] == [
        ("database", 10.0, 42.0),
        ("locust", 30.0, 60.0),
        ("service", 52.0, 100.0),
    ]
    assert peaks[2].cpu_percent_mean == pytest.approx(51.0)


def _peak(source: str, cpu: float) -> ResourcePeak:
    return ResourcePeak(source=source, cpu_percent_peak=cpu, cpu_percent_mean=cpu / 2, rss_mb_peak=100.0)


def test_the_tables_list_roles_in_order_with_base_before_pr() -> None:
    scenario = ScenarioComparison(
        scenario="journeys",
        mode="ab",
        base_trials=2,
        candidate_trials=2,
        endpoints=[],
        slos=[],
        resources={
            "candidate": [_peak("locust", 30), _peak("service", 90), _peak("database", 20)],
            "base": [_peak("database", 21), _peak("service", 80), _peak("locust", 31)],
        },
    )
    table = _resources_table(scenario)
    assert table is not None
    assert [row[:3] for row in table.rows] == [
        ("service app", "base", "80 %"),
        ("service app", "PR", "90 %"),
        ("database", "base", "21 %"),
        ("database", "PR", "20 %"),
        ("Locust", "base", "31 %"),
        ("Locust", "PR", "30 %"),
    ]
    terminal = terminal_resources_table(scenario)
    assert terminal is not None
    assert terminal.row_count == 6
