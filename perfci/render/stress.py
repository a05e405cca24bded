"""Stress results as text: a Markdown summary and step table, and an inline SVG of latency and throughput."""

from __future__ import annotations

import io
from collections.abc import Sequence

from perfci.analysis.breaking_point import load_unit
from perfci.measure.stress import StressRun


def _ms(value: float, requests: int) -> str:
    return f"{value:.0f} ms" if requests else "-"


def headline(run: StressRun) -> str:
    """One line: the breaking point, what failed first and what saturated."""
    result = run.breaking_point
    unit = load_unit(result.model)
    if result.max_rps_within_slo is None:
        core = "no step stayed within SLO"
    else:
        core = f"{result.max_rps_within_slo:.0f} req/s within SLO (at {result.max_offered_within_slo:g} {unit})"
    parts = [f"**{run.scenario}**: {core}"]
    if result.knee_offered is not None:
        parts.append(f"latency turns up at {result.knee_offered:g} {unit}")
    if result.first_failure is not None:
        parts.append(
            f"first failure at {result.first_failure.offered:g} {unit}: {result.first_failure.breach.describe()}"
        )
    elif result.plateau_offered is not None:
        parts.append(f"throughput stopped growing at {result.plateau_offered:g} {unit}")
    if result.saturated:
        parts.append(
            "saturated: " + ", ".join(f"{s.resource} CPU {s.cpu_percent:.0f} % ({s.source})" for s in result.saturated)
        )
    elif result.broke:
        parts.append("no CPU saturated: look at locks, the connection pool or I/O")
    text = "; ".join(parts) + "."
    if not result.valid:
        text += " **Invalid: the load generator was the bottleneck.**"
    return text


def stress_markdown(runs: Sequence[StressRun]) -> str:
    """The stress section of a report: headline per scenario, then its steps."""
    lines = ["## Breaking points", ""]
    for run in runs:
        result = run.breaking_point
        lines += [headline(run), ""]
        lines += [
            f"Stopped because {run.stop_reason}; {len(result.steps)} steps in {run.elapsed_s:.0f} s"
            + (f", narrowed at {', '.join(f'{b:g}' for b in run.bisected)}" if run.bisected else "")
            + ".",
            "",
            "| offered | req/s | p50 | p95 | p99 | errors | CPU | within SLO |",
            "|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for step in result.steps:
            cpu = ", ".join(f"{source} {value:.0f} %" for source, value in sorted(step.cpu_mean.items())) or "-"
            verdict = "yes" if step.within_slo else "no: " + "; ".join(b.describe() for b in step.failures)
            lines.append(
                f"| {step.offered:g} | {step.achieved_rps:.0f} | {_ms(step.p50, step.requests)} | "
                f"{_ms(step.p95, step.requests)} | {_ms(step.p99, step.requests)} | "
                f"{step.error_rate:.2%} | {cpu} | {verdict} |"
            )
        lines += ["", *(f"- {note}" for note in result.notes), f"_Method: {result.method}._", ""]
    return "\n".join(lines).rstrip() + "\n"


def stress_chart_svg(run: StressRun) -> str:
    """Latency percentiles (left axis, log) and achieved throughput (right axis) against offered load."""
    from matplotlib.figure import Figure

    result = run.breaking_point
    steps = sorted(result.steps, key=lambda s: s.offered)
    offered = [s.offered for s in steps]
    figure = Figure(figsize=(7.0, 3.6))
    latency = figure.subplots()
    for name, colour in (("p50", "#4c78a8"), ("p95", "#f58518"), ("p99", "#e45756")):
        latency.plot(offered, [getattr(s, name) for s in steps], marker="o", color=colour, label=name)
    latency.set_yscale("log")
    latency.set_xlabel(f"offered load ({load_unit(result.model)})")
    latency.set_ylabel("latency (ms)")
    throughput = latency.twinx()
    throughput.plot(offered, [s.achieved_rps for s in steps], marker="s", color="#54a24b", label="req/s")
    throughput.set_ylabel("achieved requests/s")
    if result.knee_offered is not None:
        latency.axvline(result.knee_offered, color="#888888", linestyle=":", label="knee")
    if result.first_failure is not None:
        latency.axvline(result.first_failure.offered, color="#e45756", linestyle="--", label="first failure")
    handles = latency.get_legend_handles_labels()
    more = throughput.get_legend_handles_labels()
    latency.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize="small")
    latency.set_title(f"{run.scenario}: latency and throughput by offered load")
    figure.tight_layout()
    return svg(figure)


def svg(figure: object) -> str:
    """A matplotlib figure as an inline <svg> element (no XML prologue, no timestamp: stable output)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    buffer = io.StringIO()
    with rc_context({"svg.hashsalt": "perfci", "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
