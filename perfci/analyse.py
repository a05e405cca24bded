"""Compare one scenario's trials: per endpoint and metric an estimate, a CI, a family-adjusted p and a verdict.

Pure: per-trial figures in, a `ScenarioComparison` out. The method is written up in docs/statistics.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from perfci import signflip, stats
from perfci.model import (
    EndpointComparison,
    EndpointStats,
    Environment,
    Histogram,
    Metric,
    MetricComparison,
    NoiseFloor,
    ScenarioComparison,
    SloResult,
    SloSpec,
    StatsSettings,
    Verdict,
)
from perfci.stats import FloatArray

Mode = Literal["ab", "baseline", "none"]
Adjustment = Literal["holm", "max-t"]
Schedule = Literal["interleaved", "concurrent"]
Trials = Sequence[Mapping[str, EndpointStats]]

# What is judged is `StatsSettings.metrics` (default p50, p95 and error rate). Per-endpoint throughput is
# reported but never judged: in a closed-loop scenario every endpoint's rate follows the whole journey's
# latency (Little's law), so one slower endpoint lowers the rate of all of them and a verdict would blame
# endpoints nobody touched; the latency metrics already judge the endpoint that changed. With few requests a
# rate is also a Poisson count whose pairs can agree exactly, which a t-test would read as certainty.
# A percentile needs enough requests in every trial to mean what it says: below 100 requests a "p99" is
# just the largest value, whose trial-to-trial spread swamps any change.
MIN_REQUESTS_PER_TRIAL: dict[Metric, int] = {
    "p50": 5, "mean": 5, "p90": 20, "p95": 20, "p99": 100, "rps": 20, "error_rate": 1,
}  # fmt: skip
# Error rates are judged as an absolute difference of fractions (0.002 = 0.2 percentage points), because a
# base rate of zero has no ratio. [tool.perfci.statistics] min_effect.error_rate overrides it.
DEFAULT_ERROR_RATE_MIN_EFFECT = 0.002
HIGHER_IS_BETTER: frozenset[Metric] = frozenset({"rps"})
_SEVERITY: dict[Verdict, int] = {"regression": 3, "inconclusive": 2, "improvement": 1, "no_change": 0}


def no_baseline_note(scenario: str) -> str:
    return f"no baseline for {scenario}; run `nox -s baseline` on main"


@dataclass(frozen=True)
class Arms:
    """The trials of both arms and how they relate: paired by index ("ab"), independent, or no base."""

    base: Trials
    candidate: Trials
    mode: Mode


@dataclass(frozen=True)
class _Test:
    endpoint: str
    metric: Metric
    result: stats.TestResult
    base_centre: float
    candidate_centre: float
    # "ab" only: per pair index, candidate minus base on the analysed scale; NaN where the pair is unusable.
    pair_differences: tuple[float, ...] = ()


def compare_scenario(
    scenario: str,
    base_trials: Trials | None,
    candidate_trials: Trials,
    *,
    mode: Mode,
    settings: StatsSettings,
    slos: Sequence[SloSpec],
    base_histograms: Mapping[str, Histogram] | None = None,
    candidate_histograms: Mapping[str, Histogram] | None = None,
    environment_differences: Sequence[str] = (),
    flags: Sequence[str] = (),
    notes: Sequence[str] = (),
    schedule: Schedule = "interleaved",
) -> ScenarioComparison:
    """Judge a scenario: paired per trial index ("ab"), unpaired ("baseline") or absolute figures only ("none").

    In "ab" mode pair i is (base_trials[i], candidate_trials[i]): the two trials ran back to back
    ("interleaved") or at the same time ("concurrent").
    """
    if not candidate_trials:
        raise ValueError(f"{scenario}: no candidate trials to analyse")
    if mode != "none" and not base_trials:
        raise ValueError(f"{scenario}: mode {mode!r} needs base trials")
    base: Trials = base_trials if mode != "none" and base_trials else []
    all_notes = list(notes)
    if mode == "none" and not any(n.startswith("no baseline for") for n in all_notes):
        all_notes.append(no_baseline_note(scenario))
    if mode == "ab" and len(base) != len(candidate_trials):
        all_notes.append(
            f"{len(base)} base and {len(candidate_trials)} candidate trials: only the first "
            f"{min(len(base), len(candidate_trials))} pairs are compared"
        )
    endpoints = sorted({e for t in candidate_trials for e in t} | {e for t in base for e in t})
    tests: list[_Test] = []
    skipped: dict[str, list[str]] = {}
    arms = Arms(base, candidate_trials, mode)
    in_both = {e for t in candidate_trials for e in t} & {e for t in base for e in t}
    for endpoint in sorted(in_both):  # one-arm endpoints get their own note in _endpoint
        for metric in settings.metrics:
            outcome = _test(endpoint, metric, arms, settings.alpha)
            if isinstance(outcome, str):
                skipped.setdefault(outcome, []).append(f"{endpoint} {metric}")
            else:
                tests.append(outcome)
    all_notes.extend(f"not compared ({reason}): {', '.join(items)}" for reason, items in sorted(skipped.items()))
    # A test with no spread and no difference (error rates of zero in every trial of both arms) can never
    # reject; leaving it out of Holm's count is Tarone's refinement and keeps the family's error rate.
    counted = [t for t in tests if not _void(t.result)]
    method = adjustment_method(mode, min(len(base), len(candidate_trials)), settings.alpha, schedule)
    p_values, test_alpha = _adjust(counted, method, settings.alpha)
    adjusted = dict(zip(map(id, counted), p_values, strict=True))
    comparisons: dict[str, list[MetricComparison]] = {}
    for test in tests:
        p_adjusted = adjusted.get(id(test), 1.0)
        comparisons.setdefault(test.endpoint, []).append(_judge(test, p_adjusted, settings, test_alpha))
    results: list[EndpointComparison] = []
    for endpoint in endpoints:
        result, endpoint_notes = _endpoint(endpoint, arms, comparisons.get(endpoint, []), settings, test_alpha)
        results.append(
            result.model_copy(
                update={
                    "base_histogram": (base_histograms or {}).get(endpoint),
                    "candidate_histogram": (candidate_histograms or {}).get(endpoint),
                }
            )
        )
        all_notes.extend(endpoint_notes)
    all_notes.extend(_unmatched_slos(scenario, slos, candidate_trials))
    return ScenarioComparison(
        scenario=scenario,
        mode=mode,
        base_trials=len(base),
        candidate_trials=len(candidate_trials),
        adjustment=method,
        schedule=schedule,
        endpoints=results,
        slos=evaluate_slos(candidate_trials, slos, scenario),
        environment_differences=list(environment_differences),
        flags=list(flags),
        notes=all_notes,
    )


# --------------------------------------------------------------------------------------------------------
# One test per endpoint and metric.
# --------------------------------------------------------------------------------------------------------


def adjustment_method(mode: Mode, pairs: int, alpha: float, schedule: Schedule = "interleaved") -> Adjustment:
    """Max-T over sign flips for an interleaved A/B run with pairs enough to reach alpha; Holm otherwise.

    Decided by the design alone, never by the data, so either way the family-wise error rate holds.
    Max-T gains where the tests move together: in interleaved pairs the host's swing between the two
    trials moves every endpoint at once. Concurrent arms cancel that swing, the tests are then nearly
    independent (correlations of 0 to 0.3 here), max-T amounts to Bonferroni with coarser p-values, and
    Holm on t-tests is as strong. Against a stored baseline there are no pairs to flip.
    """
    interleaved_ab = mode == "ab" and schedule == "interleaved"
    return "max-t" if interleaved_ab and signflip.enough_pairs(pairs, alpha) else "holm"


def _adjust(counted: Sequence[_Test], method: Adjustment, alpha: float) -> tuple[list[float], float]:
    """Family-adjusted p-values of the counted tests, and the single-test level the family amounts to.

    The level sizes minimum detectable effects and "more pairs would decide" figures: alpha / tests under
    Holm's first step, and under max-T the level of max-T's own first-step critical value, which sits near
    alpha when the tests move together (as latencies on one host do) and near alpha / tests when they do not.
    """
    if not counted:
        return [], alpha
    if method == "holm":
        return stats.holm([t.result.p_value for t in counted]), alpha / len(counted)
    differences = np.array([t.pair_differences for t in counted], dtype=np.float64).T
    return signflip.maxt(differences, alpha)


def _void(result: stats.TestResult) -> bool:
    return result.se == 0.0 and result.estimate == 0.0


def metric_value(figures: EndpointStats, metric: Metric) -> float:
    return figures.error_rate if metric == "error_rate" else float(getattr(figures, metric))


def _usable(figures: EndpointStats | None, metric: Metric) -> bool:
    return figures is not None and figures.n >= MIN_REQUESTS_PER_TRIAL[metric]


def _test(endpoint: str, metric: Metric, arms: Arms, alpha: float) -> _Test | str:
    """The test of one endpoint's metric, or the reason it cannot be tested (gathered into one note)."""
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    usable: list[bool] = []
    if mode == "ab":
        usable = [
            _usable(b.get(endpoint), metric) and _usable(c.get(endpoint), metric)
            for b, c in zip(base, candidate, strict=False)
        ]
        pairs = [(b[endpoint], c[endpoint]) for b, c, ok in zip(base, candidate, usable, strict=False) if ok]
        base_values = [metric_value(b, metric) for b, _ in pairs]
        cand_values = [metric_value(c, metric) for _, c in pairs]
    else:
        base_values = [metric_value(t[endpoint], metric) for t in base if _usable(t.get(endpoint), metric)]
        cand_values = [metric_value(t[endpoint], metric) for t in candidate if _usable(t.get(endpoint), metric)]
    if not base_values or not cand_values:
        return f"fewer than {MIN_REQUESTS_PER_TRIAL[metric]} requests per trial for {metric}"
    if min(len(base_values), len(cand_values)) < 2:
        return "fewer than 2 usable trials per arm: no between-trial spread to judge by"
    if metric == "error_rate":
        base_arr, cand_arr = np.asarray(base_values), np.asarray(cand_values)
        base_centre, cand_centre = float(base_arr.mean()), float(cand_arr.mean())
    else:
        try:
            base_arr, cand_arr = stats.log_values(base_values), stats.log_values(cand_values)
        except stats.NonPositiveValueError:
            return f"a zero {metric} in some trial has no log ratio"
        base_centre, cand_centre = math.exp(float(base_arr.mean())), math.exp(float(cand_arr.mean()))
    if mode != "ab":
        return _Test(endpoint, metric, stats.welch_test(base_arr, cand_arr, alpha), base_centre, cand_centre)
    differences = iter((cand_arr - base_arr).tolist())
    aligned = tuple(next(differences) if ok else math.nan for ok in usable)
    result = stats.paired_test(base_arr, cand_arr, alpha)
    return _Test(endpoint, metric, result, base_centre, cand_centre, aligned)


def min_effect(settings: StatsSettings, metric: Metric) -> float:
    if metric == "error_rate":
        return settings.min_effect.get("error_rate", DEFAULT_ERROR_RATE_MIN_EFFECT)
    return settings.min_effect.get(metric, settings.min_effect.get("p95", 0.10) if metric == "p99" else 0.05)


def _judge(test: _Test, p_adjusted: float, settings: StatsSettings, test_alpha: float) -> MetricComparison:
    """Regression/improvement need family-adjusted significance AND an estimate beyond the minimum effect."""
    result, metric = test.result, test.metric
    margin = min_effect(settings, metric)
    if metric == "error_rate":
        change, low, high = result.estimate, result.ci_low, result.ci_high
        analysed_margin = margin
    else:
        change, low, high = (
            stats.relative(result.estimate),
            stats.relative(result.ci_low),
            stats.relative(result.ci_high),
        )
        analysed_margin = math.log1p(margin)
    verdict: Verdict
    if p_adjusted < settings.alpha and abs(change) > margin:
        worse = (change > 0) != (metric in HIGHER_IS_BETTER)
        verdict = "regression" if worse else "improvement"
    elif stats.equivalent(low, high, margin):
        verdict = "no_change"
    else:
        verdict = "inconclusive"
    more = (
        stats.more_trials_to_decide(
            result,
            analysed_margin,
            alpha_test=test_alpha,
            alpha_interval=settings.alpha,
            power=settings.power,
        )
        if verdict == "inconclusive"
        else None
    )
    return MetricComparison(
        metric=metric,
        base=test.base_centre,
        candidate=test.candidate_centre,
        change=change,
        ci_low=low,
        ci_high=high,
        p_value=result.p_value,
        p_adjusted=p_adjusted,
        min_effect=margin,
        verdict=verdict,
        more_trials_needed=more,
    )


# --------------------------------------------------------------------------------------------------------
# Per endpoint: figures, errors, noise floor, the overall verdict.
# --------------------------------------------------------------------------------------------------------


def _endpoint(
    endpoint: str, arms: Arms, metrics: list[MetricComparison], settings: StatsSettings, test_alpha: float
) -> tuple[EndpointComparison, list[str]]:
    """The endpoint's figures, errors, noise floor and overall verdict, plus notes about its presence."""
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    notes: list[str] = []
    base_figures = [t[endpoint] for t in base if endpoint in t]
    cand_figures = [t[endpoint] for t in candidate if endpoint in t]
    base_errors = _error_kinds(base_figures)
    cand_errors = _error_kinds(cand_figures)
    new_kinds = sorted(set(cand_errors) - set(base_errors)) if mode != "none" else []
    verdicts: list[Verdict] = [m.verdict for m in metrics]
    if new_kinds:
        verdicts.append("regression")
    if mode != "none" and not cand_figures:
        notes.append(f"{endpoint} ran only in the base arm: the candidate made no request to it")
        verdicts.append("inconclusive")
    elif mode != "none" and not base_figures:
        notes.append(f"{endpoint} is new: the base arm made no request to it")
    elif mode != "none" and not metrics:
        verdicts.append("inconclusive")  # present in both arms yet nothing could be tested
    comparison = EndpointComparison(
        endpoint=endpoint,
        base_stats=median_stats(base_figures) if base_figures else None,
        candidate_stats=median_stats(cand_figures) if cand_figures else _absent(),
        verdict=max(verdicts, key=_SEVERITY.__getitem__, default="no_change"),
        metrics=metrics,
        noise=noise_floor(endpoint, arms, settings, test_alpha),
        base_errors=base_errors,
        candidate_errors=cand_errors,
        new_error_kinds=new_kinds,
    )
    return comparison, notes


def _absent() -> EndpointStats:
    """The candidate figures of an endpoint it never called: zero requests (the note says why)."""
    return EndpointStats(n=0, errors=0, p50=0.0, p90=0.0, p95=0.0, p99=0.0, mean=0.0, rps=0.0)


def _error_kinds(figures: Sequence[EndpointStats]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for trial in figures:
        for kind, count in trial.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return dict(sorted(kinds.items()))


def median_stats(figures: Sequence[EndpointStats]) -> EndpointStats:
    """Per statistic the median over trials; requests, errors and error kinds are summed."""
    if not figures:
        raise ValueError("no trials to summarise")
    return EndpointStats(
        n=sum(f.n for f in figures),
        errors=sum(f.errors for f in figures),
        p50=statistics.median(f.p50 for f in figures),
        p90=statistics.median(f.p90 for f in figures),
        p95=statistics.median(f.p95 for f in figures),
        p99=statistics.median(f.p99 for f in figures),
        mean=statistics.median(f.mean for f in figures),
        rps=statistics.median(f.rps for f in figures),
        error_kinds=_error_kinds(figures),
    )


def noise_floor(endpoint: str, arms: Arms, settings: StatsSettings, test_alpha: float) -> NoiseFloor:
    """Between-trial spread (sd of log statistics, about the CV) and the MDE at the family's level and power.

    `test_alpha` is the single-test level the family's adjustment amounts to (alpha / tests under Holm).

    The MDE is for the comparison actually run: paired in "ab", Welch in "baseline". With no base arm it is
    what an unpaired comparison against a baseline of the same size and spread would detect.
    """
    cv: dict[str, float] = {}
    mde: dict[str, float] = {}
    for metric in settings.metrics:
        if metric == "error_rate":
            continue  # an absolute difference of fractions; its spread is in the metric's CI
        logs = {"base": _logs(arms.base, endpoint, metric), "candidate": _logs(arms.candidate, endpoint, metric)}
        spreads = [float(np.std(v, ddof=1)) for v in logs.values() if v.size >= 2]
        if not spreads:
            continue
        cv[metric] = math.sqrt(sum(s**2 for s in spreads) / len(spreads))
        detectable = _mde(endpoint, metric, arms, logs, alpha=test_alpha, power=settings.power)
        if detectable is not None:
            mde[metric] = stats.relative(detectable)
    return NoiseFloor(cv=cv, mde=mde)


def _logs(trials: Trials, endpoint: str, metric: Metric) -> FloatArray:
    values = [metric_value(t[endpoint], metric) for t in trials if _usable(t.get(endpoint), metric)]
    if any(v <= 0 for v in values):
        return np.empty(0)
    return stats.log_values(values) if values else np.empty(0)


def _mde(
    endpoint: str, metric: Metric, arms: Arms, logs: Mapping[str, FloatArray], *, alpha: float, power: float
) -> float | None:
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    cand = logs["candidate"]
    try:
        if mode == "ab":
            pairs = [
                (metric_value(b[endpoint], metric), metric_value(c[endpoint], metric))
                for b, c in zip(base, candidate, strict=False)
                if _usable(b.get(endpoint), metric) and _usable(c.get(endpoint), metric)
            ]
            if any(b <= 0 or c <= 0 for b, c in pairs):
                return None
            diffs = [math.log(c) - math.log(b) for b, c in pairs]
            return stats.paired_mde(
                float(np.std(diffs, ddof=1)) if len(diffs) >= 2 else 0.0, len(diffs), alpha=alpha, power=power
            )
        if mode == "baseline":
            b = logs["base"]
            return stats.welch_mde(_sd(b), b.size, _sd(cand), cand.size, alpha=alpha, power=power)
        return stats.welch_mde(_sd(cand), cand.size, _sd(cand), cand.size, alpha=alpha, power=power)
    except stats.InsufficientDataError:
        return None


def _sd(values: FloatArray) -> float:
    return float(np.std(values, ddof=1)) if values.size >= 2 else 0.0


# --------------------------------------------------------------------------------------------------------
# SLOs and environments.
# --------------------------------------------------------------------------------------------------------


def _applies(slo: SloSpec, scenario: str) -> bool:
    return slo.scenario is None or slo.scenario == scenario


def evaluate_slos(candidate_trials: Trials, slos: Sequence[SloSpec], scenario: str) -> list[SloResult]:
    """Absolute limits on the candidate arm, independent of any comparison.

    A latency SLO is checked against the median over trials of each trial's percentile: the pooled window's
    percentile, approximated robustly (one disturbed trial cannot breach or rescue it alone). An error-rate
    SLO is checked against the pooled rate: all errors over all requests of the arm.
    """
    results: list[SloResult] = []
    for slo in slos:
        if not _applies(slo, scenario):
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


def _unmatched_slos(scenario: str, slos: Sequence[SloSpec], candidate_trials: Trials) -> list[str]:
    """An SLO that names this scenario but an endpoint it never called is a configuration slip: say so."""
    return [
        f"SLO for {slo.endpoint} names scenario {scenario}, which made no request to that endpoint"
        for slo in slos
        if slo.scenario == scenario and not any(slo.endpoint in t for t in candidate_trials)
    ]


_ENVIRONMENT_FIELDS = (
    "runner_os",
    "cpu_model",
    "cores",
    "python",
    "locust_version",
    "perfci_version",
    "target_kind",
    "cpu_idle",
)


def environment_differences(base_env: Environment, candidate_env: Environment) -> list[str]:
    """What differs between where the base and the candidate were measured, one line per field."""
    differences = [
        f"{name}: {getattr(base_env, name)} (baseline) vs {getattr(candidate_env, name)} (this run)"
        for name in _ENVIRONMENT_FIELDS
        if getattr(base_env, name) != getattr(candidate_env, name)
    ]
    for image in sorted(set(base_env.image_ids) | set(candidate_env.image_ids)):
        before, after = base_env.image_ids.get(image, "none"), candidate_env.image_ids.get(image, "none")
        if before != after:
            differences.append(f"image {image}: {before} (baseline) vs {after} (this run)")
    return differences
