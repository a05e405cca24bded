"""SLOs: absolute limits on the candidate arm, checked apart from any comparison (an independent gate)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Literal

from perfci.model import EndpointStats, SloResult, SloSpec

Trials = Sequence[Mapping[str, EndpointStats]]


def evaluate_slos(candidate_trials: Trials, slos: Sequence[SloSpec], scenario: str) -> list[SloResult]:
    """Absolute limits on the candidate arm, independent of any comparison.

    A latency SLO is checked against the median over trials of each trial's percentile: the pooled window's
    percentile, approximated robustly (one disturbed trial cannot breach or rescue it alone). An error-rate
    SLO is checked against the pooled rate: all errors over all requests of the arm.
    """
    results: list[SloResult] = []
    for slo in slos:
        if not slo.applies(scenario):
            continue
        figures = [t[slo.endpoint] for t in candidate_trials if slo.endpoint in t]
        if not figures:
            continue
        latency_limits: tuple[tuple[Literal["p95", "p99"], float | None], ...] = (
            ("p95", slo.p95_ms),
            ("p99", slo.p99_ms),
        )
        for metric, limit in latency_limits:
            if limit is not None:
                observed = statistics.median(float(getattr(f, metric)) for f in figures)
                results.append(
                    SloResult(
                        endpoint=slo.endpoint, metric=metric, limit=limit, observed=observed, ok=observed <= limit
                    )
                )
        if slo.error_rate is not None:
            requests = sum(f.n for f in figures)
            rate = sum(f.errors for f in figures) / requests if requests else 0.0
            results.append(
                SloResult(
                    endpoint=slo.endpoint,
                    metric="error_rate",
                    limit=slo.error_rate,
                    observed=rate,
                    ok=rate <= slo.error_rate,
                )
            )
    return results


def unmatched_slos(scenario: str, slos: Sequence[SloSpec], candidate_trials: Trials) -> list[str]:
    """An SLO that names this scenario but an endpoint it never called is a configuration slip: say so."""
    return [
        f"SLO for {slo.endpoint} names scenario {scenario}, which made no request to that endpoint"
        for slo in slos
        if slo.scenario == scenario and not any(slo.endpoint in t for t in candidate_trials)
    ]
