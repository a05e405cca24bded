"""Judge a PR's scenarios: per endpoint and metric an estimate, a CI, a p adjusted over the PR and a verdict.

Pure: per-trial figures in, `ScenarioComparison`s out. The method is written up in docs/statistics.md.
Over 400 lines because the family (one Holm or max-T over every test of the PR), the tests it holds and
the verdict of each endpoint are one decision rule; SLOs are apart (slo.py).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, ParamSpec

import numpy as np
from scipy import stats as scipy_stats

from perfci.analysis import stats
from perfci.analysis.slo import evaluate_slos, unmatched_slos
from perfci.analysis.stats import FloatArray
from perfci.model import (
    EndpointComparison,
    EndpointStats,
    Histogram,
    Metric,
    MetricComparison,
    NoiseFloor,
    ScenarioComparison,
    SloSpec,
    StatsSettings,
    Trials,
    Verdict,
)

Mode = Literal["ab", "baseline", "none"]
Schedule = Literal["interleaved", "concurrent"]
P = ParamSpec("P")

# What is judged is `StatsSettings.metrics` (default p50, p95 and error rate). Per-endpoint throughput is
# reported but never judged: in a closed-loop scenario every endpoint's rate follows the whole journey's
# latency (Little's law), so one slower endpoint lowers the rate of all of them and a verdict would blame
# endpoints nobody touched; the latency metrics already judge the endpoint that changed. With few requests a
# rate is also a Poisson count whose pairs can agree exactly, which a t-test would read as certainty.
# Floors below which a statistic is not judged at all. A percentile also needs a sampling spread small
# enough for its minimum effect (`_judgeable`): at least 5 requests beyond the quantile, 5 / (1 - p).
MIN_REQUESTS_PER_TRIAL: dict[Metric, int] = {
    "p50": 10, "mean": 5, "p90": 50, "p95": 100, "p99": 500, "rps": 20, "error_rate": 1,
}  # fmt: skip
# d log Q / dp at a percentile, estimated per trial as a secant between two stored percentiles: the tail's
# slope for the tail percentiles (where the secant matches the density well). The median has no stored
# neighbour below it and a secant to p90 overstates its spread several-fold on right-skewed latency, so p50
# and the mean are judged on their request floor alone.
_SLOPE_FROM: dict[Metric, tuple[Metric, float, Metric, float]] = {
    "p90": ("p50", 0.50, "p95", 0.95),
    "p95": ("p90", 0.90, "p99", 0.99),
    "p99": ("p95", 0.95, "p99", 0.99),
}
_QUANTILE: dict[Metric, float] = {"p90": 0.90, "p95": 0.95, "p99": 0.99}
# Error rates are judged as an absolute difference of fractions (0.002 = 0.2 percentage points), because a
# base rate of zero has no ratio. [tool.perfci.statistics] min_effect.error_rate overrides it.
DEFAULT_ERROR_RATE_MIN_EFFECT = 0.002
HIGHER_IS_BETTER: frozenset[Metric] = frozenset({"rps"})
_SEVERITY: dict[Verdict, int] = {"regression": 3, "inconclusive": 2, "improvement": 1, "no_change": 0}


def no_baseline_note(scenario: str) -> str:
    return f"no baseline for {scenario}; run `perfci baseline` on main"


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
    margin: float  # the minimum effect on the analysed scale (log for ratios)
    p_worse: float  # one-sided p of a change beyond the margin in the bad direction
    p_better: float  # ... in the good direction


@dataclass(frozen=True)
class _KindTest:
    """Did an error kind of an endpoint turn up in more candidate trials than base trials, beyond chance?"""

    endpoint: str
    kind: str
    p_value: float  # exact, one-sided, over trials (pairs in "ab")
    smallest_p: float  # the smallest p the test could reach given its flip-invariant margins (Tarone)
    base_trials: int  # trials (of the arm) in which the kind occurred
    candidate_trials: int


@dataclass(frozen=True)
class ScenarioEvidence:
    """A scenario's tests before the PR's family judges them: what `judge` needs, and what it reports."""

    scenario: str
    arms: Arms
    tests: tuple[_Test, ...]
    kinds: tuple[_KindTest, ...]
    not_judged: Mapping[tuple[str, Metric], int]  # (endpoint, metric) -> requests a trial
    notes: tuple[str, ...]
    share: float  # share of the family's alpha this scenario's look may spend (sequential looks)
    looks: tuple[int, ...]
    stop_reason: str
    schedule: Schedule
    slos: tuple[SloSpec, ...]
    base_histograms: Mapping[str, Histogram]
    candidate_histograms: Mapping[str, Histogram]
    environment_differences: tuple[str, ...]
    flags: tuple[str, ...]

    @property
    def pairs(self) -> int:
        return min(len(self.arms.base), len(self.arms.candidate)) if self.arms.mode == "ab" else 0


@dataclass(frozen=True)
class Judgement:
    """Every scenario judged under one family, and that family's size (the number of judged tests)."""

    scenarios: list[ScenarioComparison]
    judged_tests: int


def gather_scenario(
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
    looks: Sequence[int] = (),
    stop_reason: str = "",
) -> ScenarioEvidence:
    """A scenario's tests: paired per trial index ("ab"), unpaired ("baseline") or none (absolute figures).

    In "ab" mode pair i is (base_trials[i], candidate_trials[i]): the two trials ran back to back
    ("interleaved") or at the same time ("concurrent"). `looks` are the sequential plan's pair counts; the
    scenario's tests spend the share of alpha of the look its pairs reached.
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
        pairs = min(len(base), len(candidate_trials))
        all_notes.append(
            f"{len(base)} base and {len(candidate_trials)} candidate trials: only the first {pairs} pairs are compared"
        )
    arms = Arms(base, candidate_trials, mode)
    tests: list[_Test] = []
    skipped: dict[str, list[str]] = {}
    not_judged: dict[tuple[str, Metric], int] = {}
    in_both = {e for t in candidate_trials for e in t} & {e for t in base for e in t}
    for endpoint in sorted(in_both):  # one-arm endpoints get their own note in _endpoint
        for metric in settings.metrics:
            outcome = _test(endpoint, metric, arms, settings)
            if isinstance(outcome, int):
                not_judged[endpoint, metric] = outcome
            elif isinstance(outcome, str):
                skipped.setdefault(outcome, []).append(f"{endpoint} {metric}")
            else:
                tests.append(outcome)
    all_notes.extend(f"not compared ({reason}): {', '.join(items)}" for reason, items in sorted(skipped.items()))
    plan = tuple(looks)
    return ScenarioEvidence(
        scenario=scenario,
        arms=arms,
        tests=tuple(tests),
        kinds=tuple(_kind_tests(arms, in_both)) if mode != "none" else (),
        not_judged=not_judged,
        notes=tuple(all_notes),
        share=look_share(plan, min(len(base), len(candidate_trials)), settings.alpha) if mode == "ab" else 1.0,
        looks=plan,
        stop_reason=stop_reason,
        schedule=schedule,
        slos=tuple(slos),
        base_histograms=dict(base_histograms or {}),
        candidate_histograms=dict(candidate_histograms or {}),
        environment_differences=tuple(environment_differences),
        flags=tuple(flags),
    )


def _judged_alone(gather: Callable[P, ScenarioEvidence]) -> Callable[P, ScenarioComparison]:
    def judged(*args: P.args, **kwargs: P.kwargs) -> ScenarioComparison:
        settings = kwargs["settings"]
        assert isinstance(settings, StatsSettings)
        return judge([gather(*args, **kwargs)], settings).scenarios[0]

    return judged


# Judge one scenario as a PR of its own: `gather_scenario` (same arguments), then `judge` with a family of one.
compare_scenario = _judged_alone(gather_scenario)


def look_share(looks: Sequence[int], pairs: int, alpha: float) -> float:
    """The share of alpha the look at `pairs` spends: its O'Brien-Fleming increment, or all of it unplanned.

    Pairs between two planned looks (a run cut short) spend the share of the next look, which never
    happened; the looks before it may have been taken and spent theirs.
    """
    if len(looks) <= 1:
        return 1.0
    shares = stats.obrien_fleming_shares(looks, alpha)
    ahead = [i for i, n in enumerate(looks) if n >= pairs]
    return shares[ahead[0] if ahead else -1]


# --------------------------------------------------------------------------------------------------------
# The PR's family: every judged test of every scenario, and the error-kind tests, under one Holm.
# --------------------------------------------------------------------------------------------------------


def judge(evidence: Sequence[ScenarioEvidence], settings: StatsSettings, *, planned_tests: int = 0) -> Judgement:
    """Judge every scenario's tests as one family: Holm over the PR's one-sided tests beyond the minimum effect.

    Each test's p-value is divided by the alpha share of its scenario's look (a valid p-value over the whole
    sequential plan, whichever look the scenario stopped at), then Holm runs over all tests of all
    scenarios at `settings.alpha`: the chance that any test of the PR falsely reports a regression stays at
    alpha. Improvements are judged by the mirror-image family at the same level. Error-kind tests join the
    regression family when they could reach significance at all (Tarone's rule, decided from counts that
    swapping the arms cannot change). `planned_tests` adds tests not measured yet (a sequential look
    plans for the scenarios still to come) as p-values of 1.
    """
    metric_tests = [(i, t) for i, e in enumerate(evidence) for t in e.tests if not _void(t.result)]
    kinds = [(i, k) for i, e in enumerate(evidence) for k in e.kinds]
    continuous = len(metric_tests) + planned_tests
    counted_kinds, family = _tarone([(k.smallest_p / evidence[i].share) for i, k in kinds], continuous, settings.alpha)
    worse = [min(1.0, t.p_worse / evidence[i].share) for i, t in metric_tests]
    worse += [min(1.0, kinds[j][1].p_value / evidence[kinds[j][0]].share) for j in counted_kinds]
    padding = [1.0] * (family - len(worse))
    worse_adjusted = stats.holm(worse + padding)[: len(worse)] if worse else []
    better = [min(1.0, t.p_better / evidence[i].share) for i, t in metric_tests]
    better_adjusted = stats.holm(better + [1.0] * (family - len(better)))[: len(better)] if better else []
    by_test = {id(t): (worse_adjusted[n], better_adjusted[n]) for n, (_, t) in enumerate(metric_tests)}
    by_kind = {id(kinds[j][1]): worse_adjusted[len(metric_tests) + n] for n, j in enumerate(counted_kinds)}
    scenarios = [
        _scenario_comparison(e, settings, by_test, by_kind, test_alpha=settings.alpha * e.share / max(family, 1))
        for e in evidence
    ]
    return Judgement(scenarios, family - planned_tests)


def _tarone(smallest: Sequence[float], continuous: int, alpha: float) -> tuple[list[int], int]:
    """Which discrete tests count, and the family's size: the smallest K whose qualifying tests number <= K.

    A test whose smallest attainable p exceeds alpha / family can never reject and so is left out of the
    count (Tarone 1990); continuous tests always count.
    """
    for extra in range(len(smallest) + 1):
        family = continuous + extra
        # An empty family rejects nothing: every discrete test would qualify, so extra = 0 cannot hold.
        qualifying = [j for j, p in enumerate(smallest) if family == 0 or p <= alpha / family]
        if len(qualifying) <= extra:
            return qualifying, family
    return list(range(len(smallest))), continuous + len(smallest)  # unreachable: extra = len(smallest) stops


def decide_look(evidence: ScenarioEvidence, settings: StatsSettings, *, other_scenarios: int = 0) -> str | None:
    """Whether a sequential run may stop at this look: a reason to stop, or None to measure more pairs.

    It stops when every judged test of the scenario is decided (a regression, an improvement, or no change
    within the minimum effect), judged as the final verdict will be, with the scenarios still to come
    counted as as many tests again each (`other_scenarios`). Which look a run stops at never changes what
    a look may spend, so this rule can be anything; this one saves the pairs that would decide nothing.
    """
    own = sum(1 for t in evidence.tests if not _void(t.result))
    (comparison,) = judge([evidence], settings, planned_tests=own * other_scenarios).scenarios
    verdicts = [m.verdict for e in comparison.endpoints for m in e.metrics]
    failed = {(e.endpoint, k) for e in comparison.endpoints for k in e.new_error_kinds}
    # An error kind the candidate shows more often than the base, not yet significant, may become so.
    rising = [k for k in evidence.kinds if k.candidate_trials > k.base_trials and (k.endpoint, k.kind) not in failed]
    if verdicts.count("inconclusive") or rising:
        return None
    return f"every judged test decided after {evidence.pairs} pairs"


def _scenario_comparison(
    evidence: ScenarioEvidence,
    settings: StatsSettings,
    by_test: Mapping[int, tuple[float, float]],
    by_kind: Mapping[int, float],
    *,
    test_alpha: float,
) -> ScenarioComparison:
    arms = evidence.arms
    comparisons: dict[str, list[MetricComparison]] = {}
    for test in evidence.tests:
        worse, better = by_test.get(id(test), (1.0, 1.0))
        comparisons.setdefault(test.endpoint, []).append(_judge(test, worse, better, settings, test_alpha))
    significant_kinds: dict[str, list[str]] = {}
    notes = list(evidence.notes)
    for kind in evidence.kinds:
        if by_kind.get(id(kind), 1.0) < settings.alpha:
            significant_kinds.setdefault(kind.endpoint, []).append(kind.kind)
        elif kind.base_trials == 0:
            notes.append(
                f"error kind {kind.kind!r} on {kind.endpoint} in {kind.candidate_trials} candidate trial(s) and "
                "no base trial: too few to tell from chance (exact test over trials)"
            )
    endpoints = sorted({e for t in arms.candidate for e in t} | {e for t in arms.base for e in t})
    results: list[EndpointComparison] = []
    for endpoint in endpoints:
        result, endpoint_notes = _endpoint(
            endpoint,
            arms,
            comparisons.get(endpoint, []),
            settings,
            test_alpha,
            sorted(significant_kinds.get(endpoint, [])),
            {m: n for (e, m), n in evidence.not_judged.items() if e == endpoint},
        )
        results.append(
            result.model_copy(
                update={
                    "base_histogram": evidence.base_histograms.get(endpoint),
                    "candidate_histogram": evidence.candidate_histograms.get(endpoint),
                }
            )
        )
        notes.extend(endpoint_notes)
    notes.extend(unmatched_slos(evidence.scenario, evidence.slos, arms.candidate))
    return ScenarioComparison(
        scenario=evidence.scenario,
        mode=arms.mode,
        base_trials=len(arms.base),
        candidate_trials=len(arms.candidate),
        adjustment="holm",
        schedule=evidence.schedule,
        endpoints=results,
        slos=evaluate_slos(arms.candidate, evidence.slos, evidence.scenario),
        environment_differences=list(evidence.environment_differences),
        flags=list(evidence.flags),
        notes=notes,
        looks=list(evidence.looks),
        alpha_share=evidence.share,
        stop_reason=evidence.stop_reason,
    )


# --------------------------------------------------------------------------------------------------------
# One test per endpoint and metric, and per error kind.
# --------------------------------------------------------------------------------------------------------


def _void(result: stats.TestResult) -> bool:
    return result.se == 0.0 and result.estimate == 0.0


def metric_value(figures: EndpointStats, metric: Metric) -> float:
    return figures.error_rate if metric == "error_rate" else float(getattr(figures, metric))


def _requests_a_trial(endpoint: str, arms: Arms) -> float:
    """Requests a trial that decide whether a statistic is judged, from counts swapping the arms cannot change.

    Paired: the median over pairs of the smaller arm's count; unpaired: the smaller of the arms' medians.
    Neither selects pairs by their outcome, and a regression that slows a closed loop (fewer requests in
    the candidate) does not move the decision more than an improvement in the base would.
    """
    base = [t[endpoint].n if endpoint in t else 0 for t in arms.base]
    candidate = [t[endpoint].n if endpoint in t else 0 for t in arms.candidate]
    if arms.mode == "ab":
        return float(statistics.median(min(b, c) for b, c in zip(base, candidate, strict=False)))
    if not base:
        return float(statistics.median(candidate))
    return float(min(statistics.median(base), statistics.median(candidate)))


def percentile_log_sd(endpoint: str, metric: Metric, arms: Arms, requests: float) -> float:
    """Sampling sd of a trial's log percentile at `requests`, the slope taken over both arms' trials alike."""
    low_metric, low_p, high_metric, high_p = _SLOPE_FROM[metric]
    slopes = [
        (math.log(high) - math.log(low)) / (high_p - low_p)
        for t in [*arms.base, *arms.candidate]
        if endpoint in t
        for low, high in [(metric_value(t[endpoint], low_metric), metric_value(t[endpoint], high_metric))]
        if low > 0 and high > 0
    ]
    if not slopes:
        return math.inf
    return stats.quantile_log_sd(_QUANTILE[metric], requests, max(float(statistics.median(slopes)), 0.0))


def _judgeable(endpoint: str, metric: Metric, arms: Arms, settings: StatsSettings) -> int | None:
    """None when the statistic can be judged; else the requests a trial, too few for a verdict to mean anything.

    A tail percentile is judged when one trial's sampling sd of its log, from the order-statistic
    approximation, is at most the minimum effect (log scale): at 16 pairs sampling alone then keeps the
    rule's MDE near 1.25 times the minimum effect; above that, the test would spend alpha with little power.
    """
    requests = _requests_a_trial(endpoint, arms)
    if requests < MIN_REQUESTS_PER_TRIAL[metric]:
        return math.floor(requests)
    if metric in _SLOPE_FROM and percentile_log_sd(endpoint, metric, arms, requests) > math.log1p(
        min_effect(settings, metric)
    ):
        return math.floor(requests)
    return None


def _test(endpoint: str, metric: Metric, arms: Arms, settings: StatsSettings) -> _Test | str | int:
    """The test of one endpoint's metric; the requests a trial when too few to judge; or why it cannot be."""
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    if any(endpoint not in t for t in [*base, *candidate]):
        return "the endpoint is missing from some trial"
    too_few = _judgeable(endpoint, metric, arms, settings)
    if too_few is not None:
        return too_few
    if mode == "ab":
        pairs = min(len(base), len(candidate))
        base, candidate = base[:pairs], candidate[:pairs]
    base_values = [metric_value(t[endpoint], metric) for t in base]
    cand_values = [metric_value(t[endpoint], metric) for t in candidate]
    if min(len(base_values), len(cand_values)) < 2:
        return "fewer than 2 usable trials per arm: no between-trial spread to judge by"
    margin = min_effect(settings, metric)
    if metric == "error_rate":
        base_arr, cand_arr = np.asarray(base_values), np.asarray(cand_values)
        base_centre, cand_centre = float(base_arr.mean()), float(cand_arr.mean())
    else:
        try:
            base_arr, cand_arr = stats.log_values(base_values), stats.log_values(cand_values)
        except stats.NonPositiveValueError:
            return f"a zero {metric} in some trial has no log ratio"
        base_centre, cand_centre = math.exp(float(base_arr.mean())), math.exp(float(cand_arr.mean()))
        margin = math.log1p(margin)
    if mode == "ab":
        result = stats.paired_test(base_arr, cand_arr, settings.alpha)
    else:
        result = stats.welch_test(base_arr, cand_arr, settings.alpha)
    up, down = stats.beyond_margin_p_values(result, margin)
    worse, better = (down, up) if metric in HIGHER_IS_BETTER else (up, down)
    return _Test(endpoint, metric, result, base_centre, cand_centre, margin, worse, better)


def _kind_tests(arms: Arms, endpoints: set[str]) -> list[_KindTest]:
    """One exact test per endpoint and error kind seen in either arm: did the candidate's trials show it more?

    Counted over trials, not requests (a trial's errors come in bursts). Paired: McNemar's exact test over
    the pairs where only one arm showed the kind; unpaired: Fisher's exact test over trials.
    """
    tests: list[_KindTest] = []
    for endpoint in sorted(endpoints):
        kinds = sorted({k for t in [*arms.base, *arms.candidate] if endpoint in t for k in t[endpoint].error_kinds})
        for kind in kinds:
            base_has = [endpoint in t and t[endpoint].error_kinds.get(kind, 0) > 0 for t in arms.base]
            cand_has = [endpoint in t and t[endpoint].error_kinds.get(kind, 0) > 0 for t in arms.candidate]
            if arms.mode == "ab":
                cand_only = sum(c and not b for b, c in zip(base_has, cand_has, strict=False))
                base_only = sum(b and not c for b, c in zip(base_has, cand_has, strict=False))
                p = stats.sign_test_p(cand_only, base_only)
                smallest = 0.5 ** (cand_only + base_only) if cand_only + base_only else 1.0
            else:
                p, smallest = _fisher_greater(sum(base_has), len(base_has), sum(cand_has), len(cand_has))
            tests.append(_KindTest(endpoint, kind, p, smallest, sum(base_has), sum(cand_has)))
    return tests


def _fisher_greater(base_with: int, base_total: int, cand_with: int, cand_total: int) -> tuple[float, float]:
    """Fisher's exact one-sided p of more candidate trials with the kind, and the smallest p its margins allow."""
    total, with_kind = base_total + cand_total, base_with + cand_with
    p = float(scipy_stats.hypergeom.sf(cand_with - 1, total, with_kind, cand_total))
    most = min(with_kind, cand_total)
    smallest = float(scipy_stats.hypergeom.sf(most - 1, total, with_kind, cand_total))
    return min(p, 1.0), min(smallest, 1.0)


def min_effect(settings: StatsSettings, metric: Metric) -> float:
    if metric == "error_rate":
        return settings.min_effect.get("error_rate", DEFAULT_ERROR_RATE_MIN_EFFECT)
    return settings.min_effect.get(metric, settings.min_effect.get("p95", 0.10) if metric == "p99" else 0.05)


def _judge(
    test: _Test, worse_adjusted: float, better_adjusted: float, settings: StatsSettings, test_alpha: float
) -> MetricComparison:
    """One rule: a regression (improvement) when the family-adjusted one-sided test of a change beyond the
    minimum effect rejects; no change when the whole interval lies within the minimum effect."""
    result, metric = test.result, test.metric
    margin = min_effect(settings, metric)
    if metric == "error_rate":
        change, low, high = result.estimate, result.ci_low, result.ci_high
    else:
        change, low, high = (
            stats.relative(result.estimate),
            stats.relative(result.ci_low),
            stats.relative(result.ci_high),
        )
    verdict: Verdict
    if worse_adjusted < settings.alpha:
        verdict = "regression"
    elif better_adjusted < settings.alpha:
        verdict = "improvement"
    elif stats.equivalent(low, high, margin):
        verdict = "no_change"
    else:
        verdict = "inconclusive"
    towards_worse = (result.estimate > 0) != (metric in HIGHER_IS_BETTER)
    return MetricComparison(
        metric=metric,
        base=test.base_centre,
        candidate=test.candidate_centre,
        change=change,
        ci_low=low,
        ci_high=high,
        p_value=test.p_worse if towards_worse else test.p_better,
        p_adjusted=worse_adjusted if towards_worse else better_adjusted,
        min_effect=margin,
        verdict=verdict,
        more_trials_needed=_more_pairs(test, settings, test_alpha) if verdict == "inconclusive" else None,
    )


def _more_pairs(test: _Test, settings: StatsSettings, test_alpha: float) -> int | None:
    """Pairs beyond this run's that a fresh run would likely need (never a licence to extend this one).

    Beyond the margin the rule is a one-sided test of estimate - margin at the family's single-test level;
    within it, equivalence at the interval's level.
    """
    result = test.result
    if abs(result.estimate) > test.margin:
        towards = math.copysign(abs(result.estimate) - test.margin, result.estimate)
        shifted = dataclasses.replace(result, estimate=towards)
        return stats.more_trials_to_decide(
            shifted, 0.0, alpha_test=2 * test_alpha, alpha_interval=settings.alpha, power=settings.power
        )
    return stats.more_trials_to_decide(
        result, test.margin, alpha_test=2 * test_alpha, alpha_interval=settings.alpha, power=settings.power
    )


# --------------------------------------------------------------------------------------------------------
# Per endpoint: figures, errors, noise floor, the overall verdict.
# --------------------------------------------------------------------------------------------------------


def _endpoint(
    endpoint: str,
    arms: Arms,
    metrics: list[MetricComparison],
    settings: StatsSettings,
    test_alpha: float,
    significant_kinds: list[str],
    not_judged: Mapping[Metric, int],
) -> tuple[EndpointComparison, list[str]]:
    """The endpoint's figures, errors, noise floor and overall verdict, plus notes about its presence."""
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    notes: list[str] = []
    base_figures = [t[endpoint] for t in base if endpoint in t]
    cand_figures = [t[endpoint] for t in candidate if endpoint in t]
    base_errors = _error_kinds(base_figures)
    cand_errors = _error_kinds(cand_figures)
    verdicts: list[Verdict] = [m.verdict for m in metrics]
    if significant_kinds:
        verdicts.append("regression")
    if mode != "none" and not cand_figures:
        notes.append(f"{endpoint} ran only in the base arm: the candidate made no request to it")
        verdicts.append("inconclusive")
    elif mode != "none" and not base_figures:
        notes.append(f"{endpoint} is new: the base arm made no request to it")
    elif mode != "none" and not metrics and not not_judged:
        verdicts.append("inconclusive")  # present in both arms yet nothing could be tested
    noise = noise_floor(endpoint, arms, settings, test_alpha)
    comparison = EndpointComparison(
        endpoint=endpoint,
        base_stats=median_stats(base_figures) if base_figures else None,
        candidate_stats=median_stats(cand_figures) if cand_figures else _absent(),
        verdict=max(verdicts, key=_SEVERITY.__getitem__, default="no_change"),
        metrics=metrics,
        noise=noise.model_copy(update={"not_judged": dict(not_judged)}),
        base_errors=base_errors,
        candidate_errors=cand_errors,
        new_error_kinds=significant_kinds,
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
    """Between-trial spread (sd of log statistics, about the CV) and the MDE of the rule actually applied.

    `test_alpha` is the one-sided single-test level of the family's first Holm step at this look (alpha
    times the look's share over the family's size). The MDE is the smallest true change the rule "one-sided
    test beyond the minimum effect at that level" finds with probability `power`, for the comparison run:
    paired in "ab", Welch in "baseline", and with no base arm what an unpaired comparison against a
    baseline of the same size and spread would detect.
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
        detectable = _mde(endpoint, metric, arms, logs, settings, alpha=test_alpha)
        if detectable is not None:
            mde[metric] = stats.relative(detectable)
    return NoiseFloor(cv=cv, mde=mde)


def _logs(trials: Trials, endpoint: str, metric: Metric) -> FloatArray:
    values = [metric_value(t[endpoint], metric) for t in trials if endpoint in t and t[endpoint].n > 0]
    if any(v <= 0 for v in values):
        return np.empty(0)
    return stats.log_values(values) if values else np.empty(0)


def _mde(
    endpoint: str, metric: Metric, arms: Arms, logs: Mapping[str, FloatArray], settings: StatsSettings, *, alpha: float
) -> float | None:
    base, candidate, mode = arms.base, arms.candidate, arms.mode
    margin = math.log1p(min_effect(settings, metric))
    cand = logs["candidate"]
    try:
        if mode == "ab":
            pairs = [
                (metric_value(b[endpoint], metric), metric_value(c[endpoint], metric))
                for b, c in zip(base, candidate, strict=False)
                if endpoint in b and endpoint in c
            ]
            if len(pairs) < 2 or any(b <= 0 or c <= 0 for b, c in pairs):
                return None
            diffs = [math.log(c) - math.log(b) for b, c in pairs]
            se = float(np.std(diffs, ddof=1)) / math.sqrt(len(diffs))
            return stats.rule_detectable(se, len(diffs) - 1, margin, alpha=alpha, power=settings.power)
        b = logs["base"] if mode == "baseline" else cand
        if b.size < 2 or cand.size < 2:
            return None
        vb, vc = _sd(b) ** 2 / b.size, _sd(cand) ** 2 / cand.size
        df = stats.welch_df(vb, b.size, vc, cand.size)
        return stats.rule_detectable(math.sqrt(vb + vc), df, margin, alpha=alpha, power=settings.power)
    except stats.InsufficientDataError:
        return None


def _sd(values: FloatArray) -> float:
    return float(np.std(values, ddof=1)) if values.size >= 2 else 0.0
