"""The self-contained HTML report: every table plus inline SVG charts; opens offline, loads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import jinja2
from markupsafe import Markup

from perfci.model import Comparison, ScenarioComparison
from perfci.render import format as fmt
from perfci.render.charts import BASE_COLOR, CANDIDATE_COLOR, Line, Panel, svg_latency_cdf, svg_panels
from perfci.render.charts_data import ChartsData, ResourceSeries, TrialSeries
from perfci.render.markdown import headline

ARM_COLOR = {"base": BASE_COLOR, "candidate": CANDIDATE_COLOR}
ARM_NAME = {"base": "base", "candidate": "PR"}


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
    title, _ = headline(comparison)
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
