"""Recommendations: every rule in one place, each a small function from a run's evidence to a finding.

A rule reads only the `Evidence` it is given and returns a `Finding` with the figures behind it, or None.
Rules never raise on missing evidence: a run without database counters simply has no database finding.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from perfci.adapters import userservice
from perfci.analysis.breaking_point import BreakingPoint, cpu_means, resource_kind
from perfci.model import Comparison, DatabaseCounters, EndpointStats, Frozen, QueryStat, TrialInfo

Severity = Literal["info", "warning", "critical"]

LOGIN_ENDPOINT = "POST /auth/login"
GENERATOR_CPU_LIMIT = 90.0  # percent of the one core a Locust process uses
POOL_ERROR = re.compile(r"QueuePool limit|pool.{0,20}timeout|too many (clients|connections)|PoolTimeout", re.I)


class Finding(Frozen):
    rule: str
    title: str
    detail: str  # the figures behind the finding and what to do
    severity: Severity


@dataclass(frozen=True)
class Evidence:
    """What a run holds. Every part is optional; rules use what is there."""

    comparison: Comparison | None = None
    trials: Sequence[TrialInfo] = ()  # the candidate's trials
    samples: pd.DataFrame | None = None  # raw samples of those trials (SAMPLE_COLUMNS), start_s per trial
    resources: pd.DataFrame | None = None  # resource samples (t_s, source, cpu_percent, rss_mb)
    stress: Sequence[BreakingPoint] = ()
    service_env: Mapping[str, str] = field(default_factory=dict)  # [tool.perfci.service] env
    service_cpu_capacity: float = 100.0  # percent: 100 per service worker process


Rule = Callable[[Evidence], Finding | None]


def _median_endpoints(trials: Sequence[TrialInfo]) -> dict[str, dict[str, float]]:
    """Per endpoint the median over trials of p50 and p95."""
    by_endpoint: dict[str, list[EndpointStats]] = {}
    for trial in trials:
        for name, stats in trial.endpoints.items():
            by_endpoint.setdefault(name, []).append(stats)
    return {
        name: {
            "p50": statistics.median(s.p50 for s in stats),
            "p95": statistics.median(s.p95 for s in stats),
        }
        for name, stats in by_endpoint.items()
    }


def password_hash_dominates_login(evidence: Evidence) -> Finding | None:
    """Login is many times slower than every other endpoint while the service's CPU works: that is hashing."""
    figures = _median_endpoints(evidence.trials)
    login = figures.get(LOGIN_ENDPOINT)
    others = [f["p50"] for name, f in figures.items() if name != LOGIN_ENDPOINT]
    if login is None or not others:
        return None
    typical = statistics.median(others)
    if login["p50"] < 20.0 or login["p50"] < 5 * typical:
        return None
    service_cpu = max(
        (v for s, v in cpu_means(evidence.resources).items() if resource_kind(s) == "service"), default=None
    )
    time_cost, memory = userservice.password_hash_settings(evidence.service_env)
    cpu_text = f"; service CPU {service_cpu:.0f} % on average" if service_cpu is not None else ""
    return Finding(
        rule="password_hash_dominates_login",
        title="Login time is dominated by password hashing",
        detail=(
            f"{LOGIN_ENDPOINT} p50 {login['p50']:.0f} ms, p95 {login['p95']:.0f} ms against a median p50 of "
            f"{typical:.1f} ms for the other endpoints{cpu_text}; argon2id at time cost {time_cost}, memory "
            f"{memory} KiB. Each login costs one hash of CPU: size login capacity as cores / hash time, keep "
            "hashing off the event loop, and weigh the cost setting against the login rate you need."
        ),
        severity="info",
    )


def _tables(query: str) -> list[str]:
    return [m.lower() for m in re.findall(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+\"?([A-Za-z_][\w]*)", query, re.I)]


def _endpoints_for(tables: Sequence[str], endpoints: Sequence[str]) -> list[str]:
    """Best effort: endpoints whose path names the table (users -> /users..., refresh_tokens -> /auth/refresh)."""
    words = {part.rstrip("s") for table in tables for part in table.split("_") if len(part) > 2}
    return [e for e in endpoints if any(word in e.lower() for word in words)]


def database_query_slower(evidence: Evidence) -> Finding | None:
    """A top query whose mean time rose by at least 20 % (and 0.5 ms) from base to candidate."""
    if evidence.comparison is None:
        return None
    worst: tuple[float, str, QueryStat, QueryStat, list[str]] | None = None
    for scenario in evidence.comparison.scenarios:
        base: DatabaseCounters | None = scenario.database.get("base")
        candidate = scenario.database.get("candidate")
        if base is None or candidate is None:
            continue
        before = {q.query: q for q in base.top_queries}
        regressed = [e.endpoint for e in scenario.endpoints if e.verdict == "regression"]
        for after in candidate.top_queries:
            old = before.get(after.query)
            if old is None or old.mean_ms <= 0:
                continue
            rise = after.mean_ms / old.mean_ms - 1
            if rise >= 0.2 and after.mean_ms - old.mean_ms >= 0.5 and (worst is None or rise > worst[0]):
                served = _endpoints_for(_tables(after.query), [e.endpoint for e in scenario.endpoints])
                likely = [e for e in served if e in regressed] or served
                worst = (rise, scenario.scenario, old, after, likely)
    if worst is None:
        return None
    rise, scenario_name, old, after, likely = worst
    query = " ".join(after.query.split())[:160]
    serves = f"; it likely serves {', '.join(likely)}" if likely else ""
    return Finding(
        rule="database_query_slower",
        title="A database query got slower",
        detail=(
            f"in {scenario_name}, `{query}` went from {old.mean_ms:.2f} ms to {after.mean_ms:.2f} ms per call "
            f"(+{rise:.0%}, {after.calls} calls){serves}. Check its plan (EXPLAIN ANALYZE) for a lost index "
            "or a changed filter."
        ),
        severity="warning",
    )


def _error_counts(evidence: Evidence) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in evidence.trials:
        for stats in trial.endpoints.values():
            for kind, n in stats.error_kinds.items():
                counts[kind] = counts.get(kind, 0) + n
    if not counts and evidence.samples is not None and not evidence.samples.empty:
        failed = evidence.samples[~evidence.samples["ok"].astype(bool)]
        counts = {str(k): int(v) for k, v in failed["error"].fillna("unknown error").value_counts().items()}
    return counts


def connection_pool_waits(evidence: Evidence) -> Finding | None:
    """Errors that say the database pool ran dry (or the server refused more connections)."""
    pool = {kind: n for kind, n in _error_counts(evidence).items() if POOL_ERROR.search(kind)}
    if not pool:
        return None
    listed = "; ".join(f"{n} x {kind[:100]}" for kind, n in sorted(pool.items(), key=lambda kv: -kv[1]))
    return Finding(
        rule="connection_pool_waits",
        title="Requests waited for a database connection",
        detail=(
            f"{sum(pool.values())} requests failed on the connection pool ({listed}). Raise the service's database "
            "pool size within the database's max_connections, or shorten the time each request "
            "holds a connection."
        ),
        severity="critical",
    )


def cpu_bound_database_idle(evidence: Evidence) -> Finding | None:
    """At the breaking point the service's CPU was saturated while the database had room: add workers."""
    for result in evidence.stress:
        service = next((s for s in result.saturated if s.resource == "service"), None)
        if service is None or result.breaking_step is None or not result.valid:
            continue
        step = next(s for s in result.steps if s.index == result.breaking_step)
        database = [v for source, v in step.cpu_mean.items() if resource_kind(source) == "database"]
        if database and max(database) > 30.0:
            continue
        rate = result.max_rps_within_slo or step.achieved_rps
        db_text = f"the database at {max(database):.0f} % CPU" if database else "no database CPU to speak of"
        return Finding(
            rule="cpu_bound_database_idle",
            title="The service is CPU-bound while the database is idle",
            detail=(
                f"in {result.scenario}, the service ran at {service.cpu_percent:.0f} % CPU (capacity "
                f"{service.capacity_percent:.0f} %) at {rate:.0f} requests/s with {db_text}. More service "
                "worker processes (or replicas) would raise throughput before the database limits it."
            ),
            severity="warning",
        )
    return None


def errors_by_kind(evidence: Evidence) -> Finding | None:
    """Every error kind with its count and, from the raw samples, when it first appeared."""
    counts = _error_counts(evidence)
    if not counts:
        return None
    first_seen: dict[str, float] = {}
    if evidence.samples is not None and not evidence.samples.empty:
        failed = evidence.samples[~evidence.samples["ok"].astype(bool)]
        kinds = failed["error"].fillna("unknown error")
        first_seen = {str(k): float(v) for k, v in failed.groupby(kinds)["start_s"].min().items()}
    total = sum(counts.values())
    requests = sum(s.n for t in evidence.trials for s in t.endpoints.values())
    if not requests and evidence.samples is not None:
        requests = len(evidence.samples)
    rate = total / requests if requests else 1.0
    parts = []
    for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
        when = f", first at {first_seen[kind]:.1f} s" if kind in first_seen else ""
        parts.append(f"{n} x {kind[:100]}{when}")
    return Finding(
        rule="errors_by_kind",
        title=f"{total} requests failed ({rate:.2%})",
        detail="; ".join(parts) + ". The service log of the run shows each one's cause.",
        severity="critical" if rate >= 0.01 else "warning",
    )


def load_generator_saturated(evidence: Evidence) -> Finding | None:
    """Locust near a full core: its own latency leaks into the figures; spread it over workers."""
    peaks = [(t.index, t.locust_cpu_peak) for t in evidence.trials if t.locust_cpu_peak is not None]
    hot = [(index, peak) for index, peak in peaks if peak >= GENERATOR_CPU_LIMIT]
    stressed = [r for r in evidence.stress if not r.valid]
    if not hot and not stressed:
        return None
    parts = [f"trial {index + 1} peaked at {peak:.0f} % CPU" for index, peak in hot]
    parts += [
        f"stress {r.scenario} ran Locust above {GENERATOR_CPU_LIMIT:.0f} % at its breaking step" for r in stressed
    ]
    return Finding(
        rule="load_generator_saturated",
        title="The load generator was near saturation",
        detail=(
            "; ".join(parts) + ". Results from a saturated Locust under-state the service's speed; run with "
            "more Locust workers (--workers N) or on a larger runner."
        ),
        severity="warning",
    )


RULES: tuple[Rule, ...] = (
    load_generator_saturated,
    connection_pool_waits,
    errors_by_kind,
    database_query_slower,
    cpu_bound_database_idle,
    password_hash_dominates_login,
)


def recommend(evidence: Evidence, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """The findings of every rule that fired, most severe first (rule order breaks ties)."""
    order = {"critical": 0, "warning": 1, "info": 2}
    found = [finding for rule in rules if (finding := rule(evidence)) is not None]
    return sorted(found, key=lambda f: order[f.severity])
