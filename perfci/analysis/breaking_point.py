"""Breaking-point analysis of a step load: per-step figures, the knee, what failed first, what saturated.

Pure: raw samples, resource samples and the step schedule in; a frozen `BreakingPoint` out. The step
windows share one time base with the samples (seconds after the load's t0), so a single stepped trial and
a series of one-step trials laid end to end are analysed alike.

Method (stated in the result, so a reader knows what "knee" means here):
- Per step, only requests that started inside the step's window after its settle time count; the settle
  time skips the ramp while users spawn or the arrival rate changes.
- A step is *within SLO* when every endpoint with enough samples meets every SLO that applies to it, and
  the step's overall error rate is at most the error threshold.
- The breaking point is the highest achieved request rate among the steps before the first failing step:
  a rate the service sustained for a whole step, not a peak.
- The knee is the first step whose pooled p95 exceeds `knee_factor` times the low-load p95 (the lowest
  p95 of the first two steps) by more than `knee_min_ms`: the absolute floor keeps a 1 ms -> 2.5 ms wobble
  from counting as a knee.
- Throughput has stopped growing at the first step whose offered load rose by at least 20 % over the
  previous step while its achieved rate rose by less than `plateau_growth`.
- Saturation is judged at the breaking step (the first failure, else the plateau, else the last step)
  from each resource's mean CPU over that step: the load generator above 90 % of its core makes the whole
  result invalid, because latency then measures Locust rather than the service.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from perfci.model import EndpointStats, Frozen, SloSpec
from perfci.trial_figures import endpoint_stats

LoadModel = Literal["closed", "open"]
ResourceKind = Literal["service", "database", "load generator"]

# Fewer samples than this in a step and an endpoint's percentile says more about chance than the service.
MIN_SAMPLES_FOR_SLO = 20
# The load generator's own limit (percent of the one core a Locust process uses).
GENERATOR_CPU_LIMIT = 90.0
# A server resource counts as saturated above this fraction of its capacity.
SATURATION_FRACTION = 0.85


class Step(Frozen):
    """One step of the schedule: the offered load (users, or arrivals per second) and its time window."""

    offered: float
    start_s: float
    end_s: float
    settle_s: float = 0.0  # skipped at the start of the window while the load ramps to this step


class LimitBreach(Frozen):
    """One SLO or threshold a step broke, with the figures."""

    endpoint: str  # "(all)" for the overall error threshold
    limit_name: Literal["p95", "p99", "error_rate", "error_threshold"]
    limit: float  # ms for latency, a fraction for error rates
    observed: float

    @property
    def margin(self) -> float:
        return self.observed / self.limit if self.limit > 0 else float("inf")

    def describe(self) -> str:
        if self.limit_name in ("p95", "p99"):
            return f"{self.endpoint} {self.limit_name} {self.observed:.1f} ms > {self.limit:g} ms"
        return f"{self.endpoint} error rate {self.observed:.2%} > {self.limit:.2%}"


class StepResult(Frozen):
    index: int
    offered: float
    start_s: float
    end_s: float
    requests: int
    achieved_rps: float
    ok_rps: float
    p50: float
    p95: float
    p99: float
    error_rate: float
    endpoints: dict[str, EndpointStats]
    cpu_mean: dict[str, float] = Field(default_factory=dict)  # resource source -> mean CPU % in the step
    failures: list[LimitBreach] = Field(default_factory=list)

    @property
    def within_slo(self) -> bool:
        return not self.failures


class FirstFailure(Frozen):
    """What broke first: at the lowest failing load, the limit broken by the widest margin."""

    step: int
    offered: float
    breach: LimitBreach


class Saturation(Frozen):
    resource: ResourceKind
    source: str  # the resource source it was measured on ("service", "locust", a container name)
    cpu_percent: float
    capacity_percent: float
    invalidates: bool  # the load generator itself was the limit


class BreakingPoint(Frozen):
    scenario: str
    model: LoadModel
    method: str
    steps: list[StepResult]
    max_rps_within_slo: float | None  # the breaking point: the highest sustained rate within SLO
    max_offered_within_slo: float | None
    knee_offered: float | None  # offered load at which latency turned up
    knee_p95_ms: float | None
    low_load_p95_ms: float | None
    first_failure: FirstFailure | None
    plateau_offered: float | None  # offered load at which throughput stopped growing
    breaking_step: int | None  # the step where it broke (first failure, else plateau); None: never broke
    saturated: list[Saturation] = Field(default_factory=list)
    valid: bool = True
    notes: list[str] = Field(default_factory=list)

    @property
    def broke(self) -> bool:
        return self.breaking_step is not None


class Thresholds(Frozen):
    """How the analysis decides; defaults are the documented method above."""

    error_threshold: float = 0.01
    knee_factor: float = 2.0
    knee_min_ms: float = 5.0
    plateau_growth: float = 0.05
    service_cpu_capacity: float = 100.0  # percent: 100 per service worker process, at most cores x 100
    database_cpu_capacity: float = 100.0


METHOD = (
    "per step: requests started after the settle time; knee = first step whose pooled p95 exceeds "
    "{factor:g} x the low-load p95 by more than {floor:g} ms; breaking point = highest achieved rate "
    "before the first step that breaks an SLO or passes {errors:.2%} errors"
)


def step_results(
    samples: pd.DataFrame,
    schedule: Sequence[Step],
    *,
    scenario: str,
    slos: Sequence[SloSpec],
    thresholds: Thresholds,
    resources: pd.DataFrame | None = None,
) -> list[StepResult]:
    """The figures of every step, with the limits each one broke."""
    results: list[StepResult] = []
    for index, step in enumerate(schedule):
        begin = step.start_s + step.settle_s
        length = step.end_s - begin
        window = samples[(samples["start_s"] >= begin) & (samples["start_s"] < step.end_s)]
        latency = window["latency_ms"].to_numpy(dtype=np.float64)
        ok = window["ok"].astype(bool).to_numpy()
        # A step with no requests has no percentiles; 0 keeps the record storable and `requests` says why.
        p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if len(latency) else (0.0, 0.0, 0.0)
        endpoints = endpoint_stats(window, length)
        error_rate = float((~ok).sum() / len(ok)) if len(ok) else 0.0
        results.append(
            StepResult(
                index=index,
                offered=step.offered,
                start_s=step.start_s,
                end_s=step.end_s,
                requests=len(window),
                achieved_rps=len(window) / length if length > 0 else 0.0,
                ok_rps=float(ok.sum()) / length if length > 0 else 0.0,
                p50=float(p50),
                p95=float(p95),
                p99=float(p99),
                error_rate=error_rate,
                endpoints=endpoints,
                cpu_mean=cpu_means(resources, begin, step.end_s),
                failures=_failures(
                    scenario, endpoints, error_rate, requests=len(window), slos=slos, thresholds=thresholds
                ),
            )
        )
    return results


def analyse(
    samples: pd.DataFrame,
    schedule: Sequence[Step],
    *,
    scenario: str,
    model: LoadModel,
    slos: Sequence[SloSpec],
    thresholds: Thresholds | None = None,
    resources: pd.DataFrame | None = None,
) -> BreakingPoint:
    """The breaking point of a step load (see the module docstring for the method)."""
    limits = thresholds or Thresholds()
    steps = step_results(samples, schedule, scenario=scenario, slos=slos, thresholds=limits, resources=resources)
    return summarise_steps(steps, scenario=scenario, model=model, thresholds=limits)


def summarise_steps(
    steps: Sequence[StepResult], *, scenario: str, model: LoadModel, thresholds: Thresholds
) -> BreakingPoint:
    """Knee, first failure, plateau and saturation from already computed step results."""
    ordered = sorted(steps, key=lambda s: s.offered)
    first_bad = next((s for s in ordered if not s.within_slo), None)
    good = [s for s in ordered if s.within_slo and (first_bad is None or s.offered < first_bad.offered)]
    best = max(good, key=lambda s: s.achieved_rps, default=None)
    low_load, knee = _knee(ordered, thresholds)
    plateau = _plateau(ordered, thresholds.plateau_growth)
    breaking = first_bad or plateau
    judged = breaking or (ordered[-1] if ordered else None)
    saturated = _saturation(judged, thresholds) if judged else []
    notes: list[str] = []
    valid = not any(s.invalidates for s in saturated)
    if not valid:
        notes.append(
            "the load generator was above 90 % CPU at the breaking step: latencies measure Locust, "
            "not the service; add Locust workers (--workers N) and run again"
        )
    if breaking is None and ordered:
        notes.append(f"did not break up to {ordered[-1].offered:g} offered ({load_unit(model)})")
    return BreakingPoint(
        scenario=scenario,
        model=model,
        method=METHOD.format(
            factor=thresholds.knee_factor, floor=thresholds.knee_min_ms, errors=thresholds.error_threshold
        ),
        steps=list(ordered),
        max_rps_within_slo=best.achieved_rps if best else None,
        max_offered_within_slo=best.offered if best else None,
        knee_offered=knee.offered if knee else None,
        knee_p95_ms=knee.p95 if knee else None,
        low_load_p95_ms=low_load,
        first_failure=_first_failure(first_bad) if first_bad else None,
        plateau_offered=plateau.offered if plateau else None,
        breaking_step=breaking.index if breaking else None,
        saturated=saturated,
        valid=valid,
        notes=notes,
    )


def load_unit(model: LoadModel) -> str:
    """What a step's offered load counts: users (closed model) or arrivals per second (open model)."""
    return "users" if model == "closed" else "req/s"


def cpu_means(resources: pd.DataFrame | None, begin: float = -math.inf, end: float = math.inf) -> dict[str, float]:
    """Per source the mean CPU (percent of one core) of the resource samples in [begin, end)."""
    if resources is None or resources.empty:
        return {}
    inside = resources[(resources["t_s"] >= begin) & (resources["t_s"] < end)]
    means = inside.groupby("source", sort=True, observed=True)["cpu_percent"].mean()
    return {str(source): float(value) for source, value in means.items()}


def _failures(
    scenario: str,
    endpoints: dict[str, EndpointStats],
    error_rate: float,
    *,
    requests: int,
    slos: Sequence[SloSpec],
    thresholds: Thresholds,
) -> list[LimitBreach]:
    failures: list[LimitBreach] = []
    for endpoint, stats in endpoints.items():
        if stats.n < MIN_SAMPLES_FOR_SLO:
            continue
        for slo in (s for s in slos if s.applies(scenario, endpoint)):
            if slo.p95_ms is not None and stats.p95 > slo.p95_ms:
                failures.append(LimitBreach(endpoint=endpoint, limit_name="p95", limit=slo.p95_ms, observed=stats.p95))
            if slo.p99_ms is not None and stats.p99 > slo.p99_ms:
                failures.append(LimitBreach(endpoint=endpoint, limit_name="p99", limit=slo.p99_ms, observed=stats.p99))
            if slo.error_rate is not None and stats.error_rate > slo.error_rate:
                failures.append(
                    LimitBreach(
                        endpoint=endpoint, limit_name="error_rate", limit=slo.error_rate, observed=stats.error_rate
                    )
                )
    if requests and error_rate > thresholds.error_threshold:
        failures.append(
            LimitBreach(
                endpoint="(all)", limit_name="error_threshold", limit=thresholds.error_threshold, observed=error_rate
            )
        )
    return failures


def _first_failure(step: StepResult) -> FirstFailure:
    return FirstFailure(step=step.index, offered=step.offered, breach=max(step.failures, key=lambda b: b.margin))


def _knee(steps: Sequence[StepResult], thresholds: Thresholds) -> tuple[float | None, StepResult | None]:
    measured = [s for s in steps if s.requests]
    if len(measured) < 2:
        return None, None
    low = min(s.p95 for s in measured[:2])
    for step in measured[1:]:
        if step.p95 > thresholds.knee_factor * low and step.p95 - low > thresholds.knee_min_ms:
            return low, step
    return low, None


def _plateau(steps: Sequence[StepResult], growth: float) -> StepResult | None:
    best_rps = 0.0
    previous: StepResult | None = None
    for step in steps:
        offered_rose = previous is not None and step.offered >= 1.2 * previous.offered
        if offered_rose and best_rps > 0 and step.achieved_rps < (1 + growth) * best_rps:
            return step
        best_rps = max(best_rps, step.achieved_rps)
        previous = step
    return None


def resource_kind(source: str) -> ResourceKind:
    """Which part of the system a resource source measures (container names are matched loosely)."""
    name = source.lower()
    if name == "locust" or "locust" in name:
        return "load generator"
    if name == "database" or "postgres" in name or name.endswith(("db", "db-1", "db_1")):
        return "database"
    return "service"


def _saturation(step: StepResult, thresholds: Thresholds) -> list[Saturation]:
    found: list[Saturation] = []
    for source, cpu in sorted(step.cpu_mean.items()):
        kind = resource_kind(source)
        capacity = {
            "load generator": 100.0,
            "service": thresholds.service_cpu_capacity,
            "database": thresholds.database_cpu_capacity,
        }[kind]
        limit = GENERATOR_CPU_LIMIT if kind == "load generator" else SATURATION_FRACTION * capacity
        if cpu >= limit:
            found.append(
                Saturation(
                    resource=kind,
                    source=source,
                    cpu_percent=cpu,
                    capacity_percent=capacity,
                    invalidates=kind == "load generator",
                )
            )
    return found
