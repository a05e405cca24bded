"""Trends as text for `perfci trends` and as inline SVG charts for the HTML report."""

from __future__ import annotations

from collections.abc import Sequence

from perfci.analysis.trends import ChangePoint, Series, TrendReport
from perfci.render.stress import svg

# The metrics shown by default: the ones a reader of a latency trend cares about.
DEFAULT_METRICS = ("p50", "p95", "rps")


def _fmt(metric: str, value: float) -> str:
    if metric == "rps":
        return f"{value:.0f}/s"
    if metric == "error_rate":
        return f"{value:.2%}"
    return f"{value:.1f} ms"


def describe(point: ChangePoint) -> str:
    kind = f"drift over {point.drift_steps} change points" if point.is_drift else "step"
    since = f" (after {point.previous_commit[:7]})" if point.previous_commit else ""
    return (
        f"{point.endpoint} {point.metric}: {point.direction} {point.change:+.0%} "
        f"({_fmt(point.metric, point.before)} -> {_fmt(point.metric, point.after)}), {kind} beginning at "
        f"{point.commit[:7]}{since} on {point.created_at:%Y-%m-%d}"
    )


def trends_text(reports: Sequence[TrendReport], metrics: Sequence[str] = DEFAULT_METRICS) -> str:
    """Per scenario a table of the series (first, latest, change over the history) and the change points."""
    lines: list[str] = []
    for report in reports:
        shown = [s for s in report.series if s.metric in metrics]
        refreshes = max((len(s.values) for s in shown), default=0)
        lines.append(f"{report.scenario}: {refreshes} refreshes of main")
        if shown:
            width = max(len(s.endpoint) for s in shown)
            lines.append(f"  {'endpoint':<{width}}  metric  {'first':>10}  {'latest':>10}  change")
            for series in shown:
                first, latest = series.values[0], series.values[-1]
                change = f"{latest / first - 1:+.0%}" if first else "-"
                lines.append(
                    f"  {series.endpoint:<{width}}  {series.metric:<6}  {_fmt(series.metric, first):>10}  "
                    f"{_fmt(series.metric, latest):>10}  {change}"
                )
        points = [p for p in report.change_points if p.metric in metrics]
        if points:
            lines.append("  change points:")
            lines += [f"  - {describe(p)}" for p in points]
        else:
            lines.append("  no change points")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def trend_chart_svg(series: Series, change_points: Sequence[ChangePoint] = ()) -> str:
    """One series across main's refreshes, with the level before and after each change point marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 2.6))
    axes = figure.subplots()
    positions = list(range(len(series.values)))
    axes.plot(positions, series.values, marker=".", color="#4c78a8", linewidth=1)
    for point in change_points:
        colour = "#e45756" if point.direction == "regression" else "#54a24b"
        axes.axvline(point.index - 0.5, color=colour, linestyle="--", linewidth=1)
        axes.annotate(
            f"{point.change:+.0%} at {point.commit[:7]}",
            xy=(point.index - 0.5, max(series.values)),
            fontsize="small",
            color=colour,
        )
    step = max(1, len(positions) // 8)
    axes.set_xticks(positions[::step], [c[:7] for c in series.commits[::step]], fontsize="x-small", rotation=30)
    unit = "req/s" if series.metric == "rps" else "ms" if series.metric != "error_rate" else "fraction"
    axes.set_ylabel(f"{series.metric} ({unit})")
    axes.set_title(f"{series.scenario} {series.endpoint} {series.metric}", fontsize="medium")
    figure.tight_layout()
    return svg(figure)


def trend_charts_svg(report: TrendReport, metrics: Sequence[str] = ("p95",)) -> list[str]:
    """A chart per endpoint for the chosen metrics, in the report's order."""
    return [
        trend_chart_svg(
            series,
            [p for p in report.change_points if (p.endpoint, p.metric) == (series.endpoint, series.metric)],
        )
        for series in report.series
        if series.metric in metrics
    ]
