"""The HTML reports: report.html (every table, inline SVG charts, findings, trends) and stress.html.

Both are self-contained: they open offline and load nothing. Renderers only: the caller reads the run
directory and hands over the comparison, the chart series, the findings and main's trends.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import jinja2
from markupsafe import Markup

from perfci import verdict
from perfci.analysis.recommend import Finding
from perfci.analysis.trends import TrendReport
from perfci.measure.stress import StressRun
from perfci.model import Comparison, ScenarioComparison
from perfci.render import format as fmt
from perfci.render.charts import BASE_COLOR, CANDIDATE_COLOR, Line, Panel, svg_latency_cdf, svg_panels
from perfci.render.charts_data import ChartsData, ResourceSeries, TrialSeries

ARM_COLOR = {"base": BASE_COLOR, "candidate": CANDIDATE_COLOR}
ARM_NAME = {"base": "base", "candidate": "PR"}
FINDINGS_HEADING = "Findings and recommendations"
TRENDS_HEADING = "Trends on main"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("perfci", "templates"),
        autoescape=True,  # every value is untrusted text unless wrapped in Markup (our own SVG)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _cdf_charts(scenario: ScenarioComparison) -> list[tuple[str, Markup]]:
    charts = []
    for e in sorted(scenario.endpoints, key=lambda e: (fmt.VERDICT_ORDER[e.verdict], e.endpoint)):
        histograms = {}
        if e.base_histogram is not None:
            histograms["base"] = (e.base_histogram.edges_ms, e.base_histogram.counts)
        if e.candidate_histogram is not None:
            histograms["PR"] = (e.candidate_histogram.edges_ms, e.candidate_histogram.counts)
        if histograms:
            charts.append((e.endpoint, Markup(svg_latency_cdf(histograms, title=e.endpoint))))  # noqa: S704
    return charts


def _timeline_chart(trials: Sequence[TrialSeries]) -> Markup | None:
    if not trials:
        return None
    rps, p95 = [], []
    for t in sorted(trials, key=lambda t: (t.arm, t.index)):
        label = f"{ARM_NAME[t.arm]} {t.index}"
        dashed = t.arm == "base"
        rps.append(Line(label, t.t_s, t.rps, ARM_COLOR[t.arm], dashed))
        p95.append(Line(label, t.t_s, t.p95_ms, ARM_COLOR[t.arm], dashed))
    panels = [
        Panel(rps, "requests/s per trial", "seconds into the trial", "requests/s"),
        Panel(p95, "p95 latency per trial (all endpoints, 1 s bins)", "seconds into the trial", "ms"),
    ]
    return Markup(svg_panels(panels))  # noqa: S704


def _resource_chart(resources: Sequence[ResourceSeries]) -> Markup | None:
    if not resources:
        return None
    cpu, rss = [], []
    for r in sorted(resources, key=lambda r: (r.source, r.arm, r.index)):
        label = f"{r.source} {ARM_NAME[r.arm]} {r.index}"
        cpu.append(Line(label, r.t_s, r.cpu_percent, dashed=r.arm == "base"))
        rss.append(Line(label, r.t_s, r.rss_mb, dashed=r.arm == "base"))
    panels = [
        Panel(cpu, "CPU (percent of one core)", "seconds into the trial", "%"),
        Panel(rss, "memory (RSS)", "seconds into the trial", "MB"),
    ]
    return Markup(svg_panels(panels))  # noqa: S704


def render_html(
    comparison: Comparison,
    charts_data: ChartsData | None = None,
    *,
    extra_sections: Sequence[tuple[str, Markup]] = (),
) -> str:
    """One HTML file: headline, per scenario the full tables, latency CDFs, trial timelines and resources.

    `extra_sections` are (heading, body) pairs shown after the scenarios, e.g. findings and trends; a body
    is trusted HTML, so its builder escapes every value it takes from the run.
    """
    data = charts_data or ChartsData()
    title = verdict.title(comparison)
    scenarios = []
    for s in comparison.scenarios:
        scenarios.append(
            {
                "s": s,
                "endpoints": sorted(s.endpoints, key=lambda e: (fmt.VERDICT_ORDER[e.verdict], e.endpoint)),
                "cdfs": _cdf_charts(s),
                "timeline": _timeline_chart([t for t in data.trials if t.scenario == s.scenario]),
                "resources_chart": _resource_chart([r for r in data.resources if r.scenario == s.scenario]),
            }
        )
    against = {
        "ab": "same-runner A/B (paired, interleaved)",
        "baseline": "stored baseline (unpaired: only larger changes are visible)",
        "none": "no baseline: absolute figures and SLOs only",
    }[comparison.mode]
    if comparison.not_comparable:
        against = f"stored baseline of another testbed, not comparable ({comparison.not_comparable}): figures only"
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            c=comparison,
            title=title,
            against=against,
            scenarios=scenarios,
            extra_sections=extra_sections,
            fmt=fmt,
        )
    )


def render_run_html(
    comparison: Comparison, charts_data: ChartsData, findings: Sequence[Finding], trends: Sequence[TrendReport]
) -> str:
    """report.html: the comparison's tables and charts, per-trial timelines, findings, and main's trends."""
    sections = [(FINDINGS_HEADING, findings_html(findings))]
    if trends:
        sections.append((TRENDS_HEADING, trends_html(trends)))
    return render_html(comparison, charts_data, extra_sections=sections)


def findings_html(findings: Sequence[Finding]) -> Markup:
    """The findings as a list, most severe first, each with the figures behind it."""
    if not findings:
        return Markup("<p class=muted>No rule fired: no errors, saturation, slow queries or hashing-bound login.</p>")
    items = Markup("").join(
        Markup('<li><span class="{0}">{0}</span> <b>{1}</b>: {2}</li>').format(f.severity, f.title, f.detail)
        for f in findings
    )
    return Markup("<ul>{}</ul>").format(items)


def trends_html(reports: Sequence[TrendReport]) -> Markup:
    """Per scenario the change points found in main's history and a p95 chart per endpoint."""
    from perfci.render.trends import describe, trend_charts_svg

    parts = []
    for report in reports:
        points = Markup("").join(Markup("<li>{}</li>").format(describe(p)) for p in report.change_points)
        found = Markup("<ul>{}</ul>").format(points) if points else Markup("<p class=muted>No change point.</p>")
        charts = Markup("").join(
            Markup("<figure>{}</figure>").format(Markup(svg))  # noqa: S704 (our own matplotlib SVG)
            for svg in trend_charts_svg(report)
        )
        parts.append(Markup('<h3>{}</h3>{}<div class="charts">{}</div>').format(report.scenario, found, charts))
    return Markup("").join(parts)


def render_stress_html(runs: Sequence[StressRun]) -> str:
    """stress.html: per scenario the breaking point, its steps, and latency/throughput against offered load."""
    from perfci.render.stress import headline, stress_chart_svg

    shown = [
        {
            "run": run,
            "headline": headline(run).replace("**", ""),
            "chart": Markup(stress_chart_svg(run)),  # noqa: S704 (our own matplotlib SVG)
        }
        for run in runs
    ]
    return _environment().get_template("stress.html.j2").render(runs=shown)
