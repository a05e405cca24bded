"""Whole-run HTML reports: the comparison report of a run directory and the stress report."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from markupsafe import Markup

from perfci.findings import findings_for_run, with_run_measurements
from perfci.model import Comparison, Environment
from perfci.recommend import Finding
from perfci.render.charts_data import load_charts_data
from perfci.render.html import render_html
from perfci.rundir import RUN_FILE
from perfci.stress import StressRun
from perfci.testbed import testbed_id
from perfci.trends import TrendReport, load_trends

FINDINGS_HEADING = "Findings and recommendations"
TRENDS_HEADING = "Trends on main"


def render_run_html(run_dir: Path, comparison: Comparison) -> str:
    """report.html: the comparison's tables and charts, per-trial timelines, findings, and main's trends."""
    measured = with_run_measurements(run_dir, comparison)
    sections = [(FINDINGS_HEADING, findings_html(findings_for_run(run_dir, comparison)))]
    reports = _trend_reports(run_dir, [s.scenario for s in comparison.scenarios])
    if reports:
        sections.append((TRENDS_HEADING, trends_html(reports)))
    return render_html(measured, load_charts_data(run_dir, comparison), extra_sections=sections)


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


def _trend_reports(run_dir: Path, scenarios: Sequence[str]) -> list[TrendReport]:
    """main's trends for the run's scenarios, on the run's own testbed (trends never mix machines)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return []
    run = json.loads(path.read_text(encoding="utf-8"))
    baselines = run.get("config", {}).get("baselines_dir")
    if not baselines or "environment" not in run:
        return []
    history = Path(baselines) / testbed_id(Environment.model_validate(run["environment"])) / "history"
    present = [s for s in scenarios if (history / f"{s}.jsonl").is_file()]
    return load_trends(history, present) if present else []


def render_stress_html(runs: Sequence[StressRun]) -> str:
    """stress.html: per scenario the breaking point, its steps, and latency/throughput against offered load."""
    from perfci.render.stress import headline, stress_chart_svg

    sections = []
    for run in runs:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    f"{step.offered:g}",
                    f"{step.achieved_rps:.1f}",
                    f"{step.p50:.1f}",
                    f"{step.p95:.1f}",
                    f"{step.p99:.1f}",
                    f"{step.error_rate:.2%}",
                    "yes" if step.within_slo else "no",
                )
            )
            + "</tr>"
            for step in run.breaking_point.steps
        )
        sections.append(
            f"<section><h2>{html.escape(run.scenario)}</h2>"
            f"<p>{html.escape(headline(run).replace('**', ''))}</p>"
            f"<p>Stopped because {html.escape(run.stop_reason)}.</p>"
            f"{stress_chart_svg(run)}"
            "<table><tr><th>offered</th><th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th>"
            f"<th>errors</th><th>within SLO</th></tr>{rows}</table></section>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>perfci stress report</title>"
        f"<style>{style}</style></head><body><h1>perfci: breaking points</h1>{''.join(sections)}</body></html>\n"
    )
