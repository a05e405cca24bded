"""Whole-run HTML reports: the comparison report of a run directory and the stress report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from perfci.model import Comparison
from perfci.render.charts_data import load_charts_data
from perfci.render.html import render_html
from perfci.stress import StressRun


def render_run_html(run_dir: Path, comparison: Comparison) -> str:
    """report.html: the comparison's tables and charts, with per-trial timelines from the raw samples."""
    return render_html(comparison, load_charts_data(run_dir, comparison))


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
