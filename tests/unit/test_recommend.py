"""Each recommendation rule against a fixture run that triggers it and one that does not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from perfci.analysis.breaking_point import Step, Thresholds, analyse
from perfci.analysis.recommend import (
    RULES,
    Evidence,
    connection_pool_waits,
    cpu_bound_database_idle,
    database_query_slower,
    errors_by_kind,
    load_generator_saturated,
    password_hash_dominates_login,
    recommend,
)
from perfci.model import (
    ArmInfo,
    Comparison,
    DatabaseCounters,
    EndpointComparison,
    EndpointStats,
    NoiseFloor,
    QueryStat,
    ScenarioComparison,
    TrialInfo,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def stats(p50: float, n: int = 500, errors: dict[str, int] | None = None) -> EndpointStats:
    kinds = errors or {}
    return EndpointStats(
        n=n,
        errors=sum(kinds.values()),
        p50=p50,
        p90=p50 * 1.6,
        p95=p50 * 2,
        p99=p50 * 3,
        mean=p50 * 1.2,
        rps=n / 10,
        error_kinds=kinds,
    )


def trial(endpoints: dict[str, EndpointStats], index: int = 0, locust_cpu_peak: float | None = 40.0) -> TrialInfo:
    return TrialInfo(
        scenario="journeys",
        arm="candidate",
        index=index,
        started_at=NOW,
        warmup_s=2,
        duration_s=10,
        users=16,
        achieved_rps=sum(s.rps for s in endpoints.values()),
        locust_exit_codes=[0],
        locust_cpu_peak=locust_cpu_peak,
        endpoints=endpoints,
    )


HEALTHY = [
    trial({"GET /users/me": stats(4), "GET /users": stats(6), "POST /auth/login": stats(9)}, i) for i in range(3)
]
SLOW_LOGIN = [
    trial({"GET /users/me": stats(4), "GET /users": stats(6), "POST /auth/login": stats(120)}, i) for i in range(3)
]
SERVICE_CPU = pd.DataFrame(
    {"t_s": [1.0, 2.0, 1.0, 2.0], "source": ["service", "service", "locust", "locust"], "cpu_percent": [92, 96, 20, 22]}
)


def comparison(base_ms: float, candidate_ms: float) -> Comparison:
    query = "SELECT users.id, users.email FROM users WHERE users.display_name LIKE $1 ORDER BY users.id LIMIT $2"
    endpoints = [
        EndpointComparison(
            endpoint=name,
            base_stats=stats(5),
            candidate_stats=stats(5),
            verdict=verdict,
            metrics=[],
            noise=NoiseFloor(cv={}, mde={}),
        )
        for name, verdict in (("GET /users", "regression"), ("POST /auth/refresh", "no_change"))
    ]
    scenario = ScenarioComparison(
        scenario="search",
        mode="ab",
        base_trials=4,
        candidate_trials=4,
        endpoints=endpoints,
        slos=[],
        database={
            "base": DatabaseCounters(top_queries=[QueryStat(query=query, calls=900, mean_ms=base_ms, total_ms=0)]),
            "candidate": DatabaseCounters(
                top_queries=[QueryStat(query=query, calls=900, mean_ms=candidate_ms, total_ms=0)]
            ),
        },
    )
    return Comparison(
        created_at=NOW,
        mode="ab",
        base=ArmInfo(label="main"),
        candidate=ArmInfo(label="working tree"),
        profile="pr",
        alpha=0.05,
        power=0.8,
        scenarios=[scenario],
    )


def failing_samples(kinds: dict[str, float]) -> pd.DataFrame:
    """100 requests over 10 s; each error kind starts at the given second and fails every later request."""
    start = np.linspace(0, 9.9, 100)
    error = np.full(100, None, dtype=object)
    for kind, begins in kinds.items():
        error[(start >= begins) & (np.arange(100) % 2 == len(error) % 2)] = kind
    ok = np.array([e is None for e in error])
    return pd.DataFrame(
        {
            "start_s": start,
            "endpoint": "GET /users/me",
            "latency_ms": 5.0,
            "status": np.where(ok, 200, 500),
            "ok": ok,
            "bytes": 10,
            "error": error,
            "lag_ms": 0.0,
        }
    )


def stress_result(service_cpu: float, database_cpu: float, locust_cpu: float = 30.0):  # type: ignore[no-untyped-def]
    """Four steps; the last breaks the p95 SLO at the given CPU means."""
    rng = np.random.default_rng(0)
    frames, schedule, rows = [], [], []
    for i, (users, rate, median) in enumerate(((4, 40, 5), (8, 80, 5), (16, 150, 8), (32, 160, 400))):
        starts = rng.uniform(i * 10, i * 10 + 10, rate * 10)
        frames.append(
            pd.DataFrame(
                {
                    "start_s": starts,
                    "endpoint": "GET /users/me",
                    "latency_ms": median * rng.lognormal(0, 0.2, len(starts)),
                    "status": 200,
                    "ok": True,
                    "bytes": 10,
                    "error": None,
                    "lag_ms": 0.0,
                }
            )
        )
        schedule.append(Step(offered=users, start_s=i * 10, end_s=i * 10 + 10))
        share = (i + 1) / 4
        for source, cpu in (("service", service_cpu), ("database", database_cpu), ("locust", locust_cpu)):
            rows.append({"t_s": i * 10 + 5.0, "source": source, "cpu_percent": cpu * share, "rss_mb": 1.0})
    from perfci.model import SloSpec

    return analyse(
        pd.concat(frames, ignore_index=True),
        schedule,
        scenario="journeys",
        model="closed",
        slos=[SloSpec(endpoint="GET /users/me", p95_ms=150)],
        thresholds=Thresholds(),
        resources=pd.DataFrame(rows),
    )


def test_password_hashing_rule() -> None:
    env = {"USERSVC_HASH_TIME_COST": "2", "USERSVC_HASH_MEMORY_KIB": "19456"}
    finding = password_hash_dominates_login(Evidence(trials=SLOW_LOGIN, resources=SERVICE_CPU, service_env=env))
    assert finding is not None
    assert "p50 120 ms" in finding.detail
    assert "time cost 2, memory 19456 KiB" in finding.detail
    assert "service CPU 94 %" in finding.detail
    assert password_hash_dominates_login(Evidence(trials=HEALTHY, resources=SERVICE_CPU, service_env=env)) is None
    assert password_hash_dominates_login(Evidence()) is None


def test_slower_query_rule_names_the_endpoint_it_serves() -> None:
    finding = database_query_slower(Evidence(comparison=comparison(base_ms=0.8, candidate_ms=6.5)))
    assert finding is not None
    assert "0.80 ms to 6.50 ms" in finding.detail
    assert "it likely serves GET /users" in finding.detail
    assert "/auth/refresh" not in finding.detail
    assert database_query_slower(Evidence(comparison=comparison(base_ms=0.8, candidate_ms=0.85))) is None


def test_pool_wait_rule() -> None:
    pool = "TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out"
    triggered = [trial({"GET /users/me": stats(4, errors={pool: 7, "HTTP 401": 2})})]
    finding = connection_pool_waits(Evidence(trials=triggered))
    assert finding is not None
    assert finding.detail.startswith("7 requests failed on the connection pool")
    quiet = [trial({"GET /users/me": stats(4, errors={"HTTP 401": 2})})]
    assert connection_pool_waits(Evidence(trials=quiet)) is None


def test_cpu_bound_rule_needs_an_idle_database() -> None:
    finding = cpu_bound_database_idle(Evidence(stress=[stress_result(service_cpu=98, database_cpu=12)]))
    assert finding is not None
    assert "the database at 12 % CPU" in finding.detail
    assert cpu_bound_database_idle(Evidence(stress=[stress_result(service_cpu=98, database_cpu=80)])) is None
    assert cpu_bound_database_idle(Evidence(stress=[stress_result(service_cpu=40, database_cpu=10)])) is None


def test_errors_by_kind_says_when_each_began() -> None:
    samples = failing_samples({"HTTP 500": 6.0, "ConnectionResetError": 8.0})
    finding = errors_by_kind(Evidence(samples=samples))
    assert finding is not None
    assert finding.severity == "critical"
    assert "x HTTP 500, first at 6.0 s" in finding.detail
    assert "x ConnectionResetError, first at 8.0 s" in finding.detail
    assert errors_by_kind(Evidence(samples=failing_samples({}), trials=HEALTHY)) is None


def test_load_generator_rule() -> None:
    hot = [trial({"GET /users/me": stats(4)}, index=1, locust_cpu_peak=97.0)]
    finding = load_generator_saturated(Evidence(trials=hot))
    assert finding is not None
    assert "trial 2 peaked at 97 % CPU" in finding.detail
    invalid = stress_result(service_cpu=20, database_cpu=5, locust_cpu=99)
    assert not invalid.valid
    assert load_generator_saturated(Evidence(stress=[invalid])) is not None
    assert load_generator_saturated(Evidence(trials=HEALTHY)) is None


def test_recommend_orders_by_severity() -> None:
    pool = "QueuePool limit of size 5 overflow 10 reached"
    evidence = Evidence(
        trials=[*SLOW_LOGIN, trial({"GET /users/me": stats(4, errors={pool: 30})}, locust_cpu_peak=95)],
        resources=SERVICE_CPU,
    )
    # 30 failures in 5000 requests (0.6 %) is a warning; the pool running dry is critical.
    rules = [f.rule for f in recommend(evidence)]
    assert rules == [
        "connection_pool_waits",
        "load_generator_saturated",
        "errors_by_kind",
        "password_hash_dominates_login",
    ]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_no_rule_fires_on_an_empty_run(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule(Evidence()) is None
