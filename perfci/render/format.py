"""Numbers and verdicts as short, consistent text for every renderer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from perfci.model import (
    Arm,
    Comparison,
    EndpointComparison,
    MetricComparison,
    NoiseFloor,
    ResourcePeak,
    ScenarioComparison,
    Verdict,
)

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


# An interval whose ends are more than a factor of four apart (a factor of two either side of the
# estimate) says nothing a reader can use: with two or three pairs the t quantile alone makes it span
# orders of magnitude ("-100.0 % … +449327307.6 %"). Judged on the ratio scale, so that a large change
# measured tightly (+140 % … +160 %) still shows its interval.
UNINFORMATIVE_SPAN = 4.0
TOO_FEW_PAIRS = "too few pairs"


def informative(metric: MetricComparison) -> bool:
    """Whether the confidence interval is finite and its ends within a factor of UNINFORMATIVE_SPAN."""
    low, high = 1.0 + metric.ci_low, 1.0 + metric.ci_high
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0.0:
        return False
    return high / low <= UNINFORMATIVE_SPAN


def ci_text(metric: MetricComparison) -> str:
    """'+8.1 % … +20.3 %', or 'too few pairs' where the interval is not informative."""
    if not informative(metric):
        return TOO_FEW_PAIRS
    return f"{percent(metric.ci_low)} … {percent(metric.ci_high)}"


def change_with_ci(metric: MetricComparison) -> str:
    """'p95 +14.2 % (+8.1 … +20.3)': the estimate and its confidence interval (or why there is none)."""
    if not informative(metric):
        return f"{metric.metric} {percent(metric.change)} (CI: {TOO_FEW_PAIRS})"
    return f"{metric.metric} {percent(metric.change)} ({ci_text(metric)})"


def deciding_metric(endpoint: EndpointComparison) -> MetricComparison | None:
    """The metric that explains the endpoint's verdict: the largest change among those sharing it, else p95."""
    same = [m for m in endpoint.metrics if m.verdict == endpoint.verdict]
    if same and endpoint.verdict != "no_change":
        return max(same, key=lambda m: abs(m.change))
    by_name = {m.metric: m for m in endpoint.metrics}
    return by_name.get("p95") or (endpoint.metrics[0] if endpoint.metrics else None)


# What each role of the resource table is called, in the order the table lists them.
RESOURCE_ROLES = {"service": "service app", "database": "database", "locust": "Locust"}


def resource_role(source: str) -> str:
    return RESOURCE_ROLES.get(source, source)


def arm_label(arm: Arm) -> str:
    return "PR" if arm == "candidate" else "base"


def resource_rows(resources: Mapping[Arm, Sequence[ResourcePeak]]) -> list[tuple[Arm, ResourcePeak]]:
    """Every arm's peaks grouped by role (service app, database, Locust, then others), base before PR."""
    order = {role: index for index, role in enumerate(RESOURCE_ROLES)}
    rows = [(arm, peak) for arm, peaks in resources.items() for peak in peaks]
    return sorted(rows, key=lambda row: (order.get(row[1].source, len(order)), row[1].source, row[0] != "base"))


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
