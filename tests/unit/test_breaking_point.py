"""Breaking-point analysis on synthetic step loads whose knee, SLO break and saturation are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfci.breaking_point import Step, Thresholds, analyse, resource_kind
from perfci.model import SloSpec

STEP_S = 10.0
SLOS = [
    SloSpec(endpoint="GET /users/me", p95_ms=150),
    SloSpec(endpoint="POST /auth/login", p95_ms=500, error_rate=0.05),
    SloSpec(endpoint="GET /users/me", scenario="other", p95_ms=1),  # another scenario's: must not apply
]


def step_load(
    offered: list[float],
    rps: list[float],
    latency_ms: list[float],
    error_rate: list[float] | None = None,
    seed: int = 1,
) -> tuple[pd.DataFrame, list[Step]]:
    """Samples at the given rate per step, latencies lognormal around the given median, two endpoints."""
    rng = np.random.default_rng(seed)
    frames = []
    schedule = []
    for index, (load, rate, median) in enumerate(zip(offered, rps, latency_ms, strict=True)):
        start = index * STEP_S
        n = int(rate * STEP_S)
        starts = np.sort(rng.uniform(start, start + STEP_S, n))
        endpoint = np.where(rng.random(n) < 0.8, "GET /users/me", "POST /auth/login")
        latency = median * rng.lognormal(0.0, 0.25, n)
        failed = rng.random(n) < (error_rate[index] if error_rate else 0.0)
        frames.append(
            pd.DataFrame(
                {
                    "start_s": starts,
                    "endpoint": endpoint,
                    "latency_ms": latency,
                    "status": np.where(failed, 500, 200),
                    "ok": ~failed,
                    "bytes": 100,
                    "error": np.where(failed, "HTTP 500", None),
                    "lag_ms": 0.0,
                }
            )
        )
        schedule.append(Step(offered=load, start_s=start, end_s=start + STEP_S, settle_s=1.0))
    return pd.concat(frames, ignore_index=True), schedule


def cpu(schedule: list[Step], per_source: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"t_s": step.start_s + t, "source": source, "cpu_percent": values[i], "rss_mb": 100.0}
        for source, values in per_source.items()
        for i, step in enumerate(schedule)
        for t in np.arange(0.5, STEP_S, 1.0)
    ]
    return pd.DataFrame(rows)


OFFERED = [4, 8, 16, 32, 64, 128]
RPS = [40, 80, 160, 300, 330, 335]  # grows, then stops growing at 64 -> 128 users
LATENCY = [10, 10, 11, 25, 180, 400]  # turns up at 32 users; the 150 ms SLO breaks at 64


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
