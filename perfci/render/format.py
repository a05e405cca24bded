"""Numbers and verdicts as short, consistent text for every renderer."""

from __future__ import annotations

import math

from perfci.model import Comparison, EndpointComparison, MetricComparison, NoiseFloor, ScenarioComparison, Verdict

# Shown where a figure does not exist (no base arm, no SLO); a dash reads as "nothing here" in a table.
NONE = "\N{EN DASH}"
VERDICT_LABEL: dict[Verdict, str] = {
    "regression": "🔴 regression",
    "inconclusive": "🟡 inconclusive",
    "improvement": "🟢 improvement",
    "no_change": "⚪ no change",
}
# Regressions first, then what needs a second look, then good news, then the rest.
VERDICT_ORDER: dict[Verdict, int] = {"regression": 0, "inconclusive": 1, "improvement": 2, "no_change": 3}


def ms(value: float | None) -> str:
    """Milliseconds with about three significant figures; seconds from 10 s up."""
    if value is None or math.isnan(value):
        return NONE
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def rate(value: float) -> str:
    return f"{value:.1f}/s" if value < 100 else f"{value:.0f}/s"


def percent(fraction: float, *, signed: bool = True) -> str:
    """A relative change or a rate: +14.2 %, -3.0 %; small rates keep more digits."""
    value = fraction * 100
    if not signed:
        return f"{value:.2f} %" if abs(value) < 1 else f"{value:.1f} %"
    return f"{value:+.1f} %"


def change_with_ci(metric: MetricComparison) -> str:
    """'p95 +14.2 % (+8.1 … +20.3)': the estimate and its confidence interval."""
    return f"{metric.metric} {percent(metric.change)} ({percent(metric.ci_low)} … {percent(metric.ci_high)})"


def deciding_metric(endpoint: EndpointComparison) -> MetricComparison | None:
    """The metric that explains the endpoint's verdict: the largest change among those sharing it, else p95."""
    same = [m for m in endpoint.metrics if m.verdict == endpoint.verdict]
    if same and endpoint.verdict != "no_change":
        return max(same, key=lambda m: abs(m.change))
    by_name = {m.metric: m for m in endpoint.metrics}
    return by_name.get("p95") or (endpoint.metrics[0] if endpoint.metrics else None)


def short_sha(commit: str | None) -> str:
    return commit[:7] if commit else "unknown"


def budget_line(comparison: Comparison) -> str | None:
    """The verdict's error budget in one sentence; None when nothing was compared."""
    if comparison.mode == "none" or not comparison.judged_tests:
        return None
    rate = f"{comparison.alpha * 100:g} %"
    tests = f"{comparison.judged_tests} judged test{'s' if comparison.judged_tests != 1 else ''}"
    return (
        f"Per-PR false-fail rate held to {rate} across {tests} (every scenario, metric and error kind; one-sided "
        "tests beyond the minimum effect, Holm). SLOs are a separate, absolute gate."
    )


def sequential_line(scenario: ScenarioComparison) -> str | None:
    """How many pairs a sequential run measured of its plan, and why it stopped there."""
    if scenario.mode != "ab" or len(scenario.looks) < 2:
        return None
    looks = ", ".join(str(n) for n in scenario.looks)
    reason = scenario.stop_reason or "the plan's last look"
    return f"{scenario.candidate_trials} of up to {scenario.looks[-1]} pairs (looks at {looks}): {reason}."


def mde_cell(noise: NoiseFloor, metric: str) -> str:
    """The rule's MDE of a metric, or why it is not judged."""
    if metric in noise.not_judged:
        return f"not judged: {noise.not_judged[metric]} requests a trial"
    return percent(noise.mde[metric], signed=False) if metric in noise.mde else NONE


def fresh_run_hint(pairs: int, more: int) -> str:
    """The size of a fresh run that would likely decide: a plan for the next run, never an extension of this one
    (looking again after extending would spend alpha the plan did not budget)."""
    return f"a fresh run of about {pairs + more} pairs would likely decide"
