"""SLOs: absolute limits on the candidate arm, checked apart from any comparison (an independent gate).

Also the SLOs a run never checked because no scenario made a request to their endpoint (a typo).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from perfci.config import Config
from perfci.errors import ConfigError
from perfci.model import Comparison, SloResult, SloSpec, Trials


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


def with_unmatched_slo_notes(config: Config, comparison: Comparison) -> Comparison:
    """A note in every scenario for an SLO (without a scenario filter) that matched no endpoint of the run.

    Such an SLO was never checked: a typo in its endpoint would otherwise disable it in silence. The note
    goes into the reports; the CLI then exits 2 when the run covered the whole configured suite
    (`unchecked_slo_error`), since a run of some scenarios (`--scenario auth`) rightly misses the others.
    """
    unmatched = unmatched_slo_endpoints(config, comparison)
    if not unmatched:
        return comparison
    ran = ", ".join(s.scenario for s in comparison.scenarios)
    notes = [
        f"SLO for {endpoint} was not checked: no scenario of this run ({ran}) made a request to it; "
        f"check its spelling in {config.config_file}"
        for endpoint in unmatched
    ]
    scenarios = [s.model_copy(update={"notes": [*s.notes, *notes]}) for s in comparison.scenarios]
    return comparison.model_copy(update={"scenarios": scenarios})


def unmatched_slo_endpoints(config: Config, comparison: Comparison) -> list[str]:
    """The endpoints of SLOs without a scenario filter that no scenario of the run made a request to."""
    measured = {e.endpoint for s in comparison.scenarios for e in s.endpoints}
    return [slo.endpoint for slo in config.slos if slo.scenario is None and slo.endpoint not in measured]


def unchecked_slo_error(config: Config, comparison: Comparison) -> ConfigError | None:
    """An error for SLOs that matched nothing in a run of the whole configured suite: a typo, never checked.

    A run narrowed to some scenarios (`--scenario auth`) only gets the notes: it rightly misses the rest.
    """
    unmatched = unmatched_slo_endpoints(config, comparison)
    if not unmatched or config.scenarios_narrowed or comparison.failure is not None:
        return None
    return ConfigError(
        f"SLO endpoint(s) {unmatched} in {config.config_file} matched no endpoint of any scenario, so they were "
        "never checked",
        "fix the endpoint in [[tool.perfci.slo]] (labels look like 'GET /users/{id}'; the run's report lists them), "
        "or give the SLO a scenario",
    )
