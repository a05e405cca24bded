"""Breaking-point analysis on synthetic step loads whose knee, SLO break and saturation are known."""

from __future__ import annotations

import numpy as np
import pytest

from perfci.analysis.breaking_point import Thresholds, analyse, resource_kind
from tests.builders import LATENCY, OFFERED, RPS, SLOS, cpu, step_load


def test_knee_slo_break_and_saturated_service_cpu() -> None:
    samples, schedule = step_load(OFFERED, RPS, LATENCY)
    resources = cpu(schedule, {"service": [10, 20, 40, 80, 97, 99], "locust": [5, 8, 15, 25, 28, 30]})
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=SLOS, resources=resources)

    assert result.knee_offered == 32  # p95 ~ 25 x 1.5 = 38 ms > 2 x ~15 ms
    assert result.first_failure is not None
    assert result.first_failure.offered == 64
    assert result.first_failure.breach.endpoint == "GET /users/me"
    assert result.first_failure.breach.limit_name == "p95"
    assert result.max_offered_within_slo == 32
    assert result.max_rps_within_slo == pytest.approx(300, rel=0.1)
    assert result.breaking_step == 4
    assert [s.resource for s in result.saturated] == ["service"]
    assert result.valid
    assert result.plateau_offered == 128


def test_per_step_figures_match_numpy_and_exclude_the_settle_time() -> None:
    samples, schedule = step_load(OFFERED, RPS, LATENCY)
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=[])
    step = result.steps[2]
    inside = samples[(samples["start_s"] >= 21.0) & (samples["start_s"] < 30.0)]
    assert step.requests == len(inside)
    assert step.achieved_rps == pytest.approx(len(inside) / 9.0)
    assert step.p95 == pytest.approx(float(np.percentile(inside["latency_ms"], 95)))
    assert set(step.endpoints) == {"GET /users/me", "POST /auth/login"}


def test_error_threshold_breaks_before_latency_does() -> None:
    samples, schedule = step_load(OFFERED, RPS, [10] * 6, error_rate=[0, 0, 0.03, 0.2, 0.3, 0.4])
    result = analyse(
        samples,
        schedule,
        scenario="auth",
        model="open",
        slos=[],
        thresholds=Thresholds(error_threshold=0.01),
    )
    assert result.first_failure is not None
    assert result.first_failure.offered == 16
    assert result.first_failure.breach.endpoint == "(all)"
    assert result.first_failure.breach.limit_name == "error_threshold"
    assert result.max_offered_within_slo == 8
    assert result.knee_offered is None  # latency never turned up


def test_an_overloaded_load_generator_invalidates_the_result() -> None:
    samples, schedule = step_load(OFFERED, RPS, LATENCY)
    resources = cpu(schedule, {"service": [10, 12, 14, 16, 18, 20], "locust": [30, 50, 70, 90, 96, 99]})
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=SLOS, resources=resources)
    assert not result.valid
    assert [(s.resource, s.invalidates) for s in result.saturated] == [("load generator", True)]
    assert any("Locust" in note for note in result.notes)


def test_a_service_that_never_breaks_says_so() -> None:
    offered = [4, 8, 16]
    samples, schedule = step_load(offered, [40, 80, 160], [10, 10, 10])
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=SLOS)
    assert not result.broke
    assert result.first_failure is None
    assert result.knee_offered is None
    assert result.max_offered_within_slo == 16
    assert result.notes == ["did not break up to 16 offered (users)"]


def test_few_samples_do_not_decide_an_slo() -> None:
    # A handful of slow requests in a step are not evidence of a p95 above 500 ms.
    samples, schedule = step_load([4], [2], [900])
    result = analyse(samples, schedule, scenario="journeys", model="closed", slos=SLOS)
    assert result.first_failure is None


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("locust", "load generator"),
        ("database", "database"),
        ("perfci-postgres-1", "database"),
        ("service", "service"),
        ("perfci-app-1", "service"),
    ],
)
def test_resource_kinds(source: str, kind: str) -> None:
    assert resource_kind(source) == kind
