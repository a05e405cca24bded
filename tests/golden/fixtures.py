"""Fixture comparisons built in code: the inputs of the golden Markdown tests and the HTML checks."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

from perfci.model import (
    ArmInfo,
    Comparison,
    DatabaseCounters,
    EndpointComparison,
    EndpointStats,
    Histogram,
    Metric,
    MetricComparison,
    NoiseFloor,
    QueryStat,
    ResourcePeak,
    RunFailure,
    ScenarioComparison,
    SloResult,
    Verdict,
)
from perfci.trial_figures import HISTOGRAM_EDGES_MS
from tests.builders import environment

CREATED = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)
ENV = environment(
    runner_os="Linux-6.8-x86_64", cpu_model="AMD EPYC 7763", cores=4, target_kind="compose", cpu_idle="held awake"
)
BASE_AB = ArmInfo(label="main@abc1234", ref="main", commit="abc1234def5678abc1234def5678abc1234def56")
CANDIDATE = ArmInfo(
    label="feature/faster-login@9f8e7d6", ref="feature/faster-login", commit="9f8e7d6c5b4a", environment=ENV
)


def stats(p50: float, p95: float, *, n: int = 4000, errors: int = 0, rps: float = 125.0) -> EndpointStats:
    return EndpointStats(n=n, errors=errors, p50=p50, p90=p95 * 0.9, p95=p95, p99=p95 * 1.4, mean=p50 * 1.1, rps=rps)


def histogram(centre_ms: float, spread: float = 0.25) -> Histogram:
    """A log-normal-ish shape around `centre_ms` on the standard edges, deterministic."""
    counts = []
    for lo, hi in itertools.pairwise(HISTOGRAM_EDGES_MS):
        mid = math.log(math.sqrt(lo * hi) / centre_ms)
        counts.append(round(1000 * math.exp(-(mid**2) / (2 * spread**2))))
    return Histogram(edges_ms=list(HISTOGRAM_EDGES_MS), counts=counts)


def metric(name: Metric, base: float, change: float, verdict: Verdict, half_width: float = 0.03) -> MetricComparison:
    significant = verdict in ("regression", "improvement")
    return MetricComparison(
        metric=name,
        base=base,
        candidate=base * (1 + change),
        change=change,
        ci_low=change - half_width,
        ci_high=change + half_width,
        p_value=0.001 if significant else 0.4,
        p_adjusted=0.004 if significant else 0.8,
        min_effect=0.10 if name == "p95" else 0.05,
        verdict=verdict,
        more_trials_needed=6 if verdict == "inconclusive" else None,
    )


def endpoint(
    name: str,
    p50: float,
    p95: float,
    change: float,
    verdict: Verdict,
    *,
    errors: dict[str, int] | None = None,
    base_errors: dict[str, int] | None = None,
    new_kinds: list[str] | None = None,
    half_width: float = 0.03,
    with_base: bool = True,
) -> EndpointComparison:
    cand_errors = errors or {}
    return EndpointComparison(
        endpoint=name,
        base_stats=stats(p50, p95, errors=sum((base_errors or {}).values())) if with_base else None,
        candidate_stats=stats(p50 * (1 + change), p95 * (1 + change), errors=sum(cand_errors.values())),
        verdict=verdict,
        metrics=[
            metric("p50", p50, change * 0.8, verdict if verdict != "regression" else "no_change", half_width),
            metric("p95", p95, change, verdict, half_width),
        ]
        if with_base
        else [],
        noise=NoiseFloor(cv={"p50": 0.021, "p95": 0.043}, mde={"p50": 0.064, "p95": 0.127}),
        base_errors=base_errors or {},
        candidate_errors=cand_errors,
        new_error_kinds=new_kinds or [],
        base_histogram=histogram(p50) if with_base else None,
        candidate_histogram=histogram(p50 * (1 + change)),
    )


def _comparison(mode: str, scenarios: list[ScenarioComparison], base: ArmInfo | None = BASE_AB) -> Comparison:
    return Comparison(
        created_at=CREATED,
        mode=mode,
        base=base,
        candidate=CANDIDATE,
        profile="pr",
        alpha=0.01,
        power=0.8,
        scenarios=scenarios,
        judged_tests=0 if mode == "none" else 2 * sum(len(s.endpoints) for s in scenarios) + 1,
        run_url="https://github.com/acme/users/actions/runs/123456789",
        report_url="https://github.com/acme/users/actions/runs/123456789/artifacts/987654",
    )


def _resources() -> dict[str, list[ResourcePeak]]:
    return {
        "base": [ResourcePeak(source="service", cpu_percent_peak=88, cpu_percent_mean=61, rss_mb_peak=143)],
        "candidate": [ResourcePeak(source="service", cpu_percent_peak=97, cpu_percent_mean=74, rss_mb_peak=151)],
    }


def _database() -> dict[str, DatabaseCounters]:
    query = "SELECT users.id, users.email FROM users WHERE users.email = $1"
    return {
        "base": DatabaseCounters(
            xact_commit=9000,
            blks_hit=120000,
            top_queries=[QueryStat(query=query, calls=4000, mean_ms=0.21, total_ms=840)],
        ),
        "candidate": DatabaseCounters(
            xact_commit=9100,
            blks_hit=480000,
            blks_read=2000,
            top_queries=[
                QueryStat(query=query, calls=4000, mean_ms=1.9, total_ms=7600),
                QueryStat(query="SELECT count(*) FROM sessions", calls=4000, mean_ms=0.5, total_ms=2000),
            ],
        ),
    }


def regression() -> Comparison:
    scenario = ScenarioComparison(
        scenario="journeys",
        mode="ab",
        base_trials=12,
        candidate_trials=12,
        endpoints=[
            endpoint("GET /users", 8.1, 21.0, 0.01, "no_change"),
            endpoint("POST /auth/login", 41.0, 88.0, 0.31, "regression", half_width=0.06),
            endpoint("GET /users/me", 3.2, 7.9, -0.02, "no_change"),
            endpoint("GET /users/{id}", 2.9, 6.1, -0.18, "improvement"),
            endpoint("POST /auth/logout", 4.0, 9.0, 0.02, "no_change").model_copy(
                update={"noise": NoiseFloor(cv={"p50": 0.05, "p95": 0.2}, mde={"p50": 0.112}, not_judged={"p95": 20})}
            ),
            endpoint(
                "PATCH /users/{id}",
                5.0,
                12.0,
                0.0,
                "regression",
                errors={"HTTP 500: IntegrityError": 12},
                new_kinds=["HTTP 500: IntegrityError"],
            ),
        ],
        slos=[
            SloResult(endpoint="POST /auth/login", metric="p95", limit=500, observed=115.3, ok=True),
            SloResult(endpoint="GET /users", metric="p95", limit=250, observed=21.2, ok=True),
        ],
        resources=_resources(),
        database=_database(),
        looks=[8, 12, 16],
        alpha_share=0.267,
        stop_reason="every judged test decided after 12 pairs",
    )
    return _comparison("ab", [scenario])


def all_clear() -> Comparison:
    scenario = ScenarioComparison(
        scenario="auth",
        mode="ab",
        base_trials=4,
        candidate_trials=4,
        endpoints=[
            endpoint("POST /auth/login", 41.0, 88.0, 0.01, "no_change"),
            endpoint("POST /auth/refresh", 2.0, 4.4, -0.01, "no_change"),
        ],
        slos=[SloResult(endpoint="POST /auth/login", metric="p95", limit=500, observed=88.9, ok=True)],
    )
    return _comparison("ab", [scenario])


def no_baseline() -> Comparison:
    scenario = ScenarioComparison(
        scenario="search",
        mode="none",
        base_trials=0,
        candidate_trials=4,
        endpoints=[
            endpoint("GET /users", 8.1, 21.0, 0.0, "no_change", with_base=False),
            endpoint("GET /users/search", 14.0, 39.0, 0.0, "no_change", with_base=False),
        ],
        slos=[SloResult(endpoint="GET /users", metric="p95", limit=250, observed=21.0, ok=True)],
        notes=["no baseline for search; run perfci baseline on main"],
        resources={"candidate": _resources()["candidate"]},
    )
    return _comparison("none", [scenario], base=None)


def slo_breach() -> Comparison:
    stored = ArmInfo(
        label="main@def5678",
        ref="main",
        commit="def5678aaaabbbbccccdddd",
        created_at=datetime(2025, 3, 1, 9, 15, tzinfo=UTC),
        environment=ENV.model_copy(update={"cpu_model": "Intel Xeon 8370C"}),
    )
    scenario = ScenarioComparison(
        scenario="sessions",
        mode="baseline",
        base_trials=6,
        candidate_trials=4,
        endpoints=[
            endpoint("GET /users/me", 120.0, 171.0, 0.04, "no_change", half_width=0.08),
            endpoint(
                "POST /auth/logout",
                3.0,
                6.0,
                0.02,
                "no_change",
                errors={"HTTP 503": 9},
                base_errors={"HTTP 503": 7},
            ),
        ],
        slos=[
            SloResult(endpoint="GET /users/me", metric="p95", limit=150, observed=177.8, ok=False),
            SloResult(endpoint="POST /auth/logout", metric="error_rate", limit=0.001, observed=0.00225, ok=False),
        ],
        environment_differences=["cpu_model: Intel Xeon 8370C (baseline) vs AMD EPYC 7763 (this run)"],
    )
    return _comparison("baseline", [scenario], base=stored)


def inconclusive() -> Comparison:
    scenario = ScenarioComparison(
        scenario="search",
        mode="ab",
        base_trials=4,
        candidate_trials=4,
        endpoints=[
            endpoint("GET /users/search", 14.0, 39.0, 0.07, "inconclusive", half_width=0.12),
            endpoint("GET /users", 8.1, 21.0, 0.0, "no_change"),
        ],
        slos=[],
        flags=["trial candidate-2 reached 91 % of its target arrival rate"],
    )
    return _comparison("ab", [scenario])


def not_comparable() -> Comparison:
    """The only stored baseline was measured on another testbed: figures side by side, no verdicts."""
    stored = ArmInfo(
        label="main@def5678",
        ref="main",
        commit="def5678aaaabbbbccccdddd",
        created_at=datetime(2025, 3, 1, 9, 15, tzinfo=UTC),
        environment=ENV.model_copy(update={"cpu_model": "Intel Xeon 8370C"}),
    )
    scenario = ScenarioComparison(
        scenario="search",
        mode="none",
        base_trials=0,
        candidate_trials=4,
        endpoints=[
            endpoint("GET /users", 8.1, 21.0, 0.62, "no_change").model_copy(update={"metrics": []}),
            endpoint("GET /users/search", 14.0, 39.0, 0.45, "no_change").model_copy(update={"metrics": []}),
        ],
        slos=[SloResult(endpoint="GET /users", metric="p95", limit=250, observed=21.0, ok=True)],
        notes=[
            "no baseline for search on this testbed (amd-epyc-7763-2c-process-1a2b3c4d); another testbed's is "
            "not comparable: shown beside this run, not judged"
        ],
        environment_differences=["cpu_model: Intel Xeon 8370C (baseline) vs AMD EPYC 7763 (this run)"],
    )
    return _comparison("none", [scenario], base=stored).model_copy(
        update={"not_comparable": "measured on cpu_model Intel Xeon 8370C; this is cpu_model AMD EPYC 7763"}
    )


def infrastructure_failure() -> Comparison:
    """A run that never got a verdict: its service did not come up (the words are a run's: made inert)."""
    log = "/work/runs/2025-03-04_123000_pr/targets/candidate/service.log"
    failure = RunFailure(
        kind="boot",
        message=f"service not healthy at http://127.0.0.1:8123/readyz after 90 s; its log is at {log}",
        hint="raise boot_timeout_s if it is just slow",
        log=log,
    )
    return _comparison("none", [], base=None).model_copy(update={"failure": failure})


FIXTURES = {
    "not_comparable": not_comparable,
    "regression": regression,
    "all_clear": all_clear,
    "no_baseline": no_baseline,
    "slo_breach": slo_breach,
    "inconclusive": inconclusive,
    "infrastructure_failure": infrastructure_failure,
}
