"""Numbers and verdicts as short, consistent text for every renderer."""

from __future__ import annotations

import math

from perfci.model import EndpointComparison, MetricComparison, Verdict

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
