"""Charts as inline SVG strings (matplotlib, no pyplot state): reusable by the HTML, stress and trend reports."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

# Text stays text (small, searchable) and ids are stable, so the same data gives the same SVG.
mpl.rcParams["svg.fonttype"] = "none"
mpl.rcParams["svg.hashsalt"] = "perfci"

BASE_COLOR = "#6b7280"
CANDIDATE_COLOR = "#2563eb"
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


@dataclass(frozen=True)
class Line:
    """One line of a chart: a label for the legend, the points, and optionally a colour and dash style."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str | None = None
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    """One set of axes: its lines and labels."""

    lines: Sequence[Line]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    logx: bool = False
    ylim_zero: bool = True


def plain(text: str) -> str:
    """Text matplotlib shows literally: '$' would start mathtext, which could fail on an endpoint name."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def figure_svg(figure: Figure) -> str:
    """The figure as an <svg> element for inlining (no XML prolog, no DOCTYPE, no date)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = re.sub(r"(?s)^.*?(?=<svg)", "", text, count=1)
    # The RDF metadata block only names namespaces by URL; the report is easier to audit without it.
    return re.sub(r"(?s)\s*<metadata>.*?</metadata>", "", text, count=1)


def svg_panels(panels: Sequence[Panel], *, width_in: float = 8.0, panel_height_in: float = 2.6) -> str:
    """Panels stacked vertically, sharing nothing but the figure; returns the SVG."""
    figure = Figure(figsize=(width_in, panel_height_in * max(1, len(panels))), layout="constrained")
    axes_list = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axes, panel in zip(axes_list, panels, strict=True):
        for i, line in enumerate(panel.lines):
            axes.plot(
                list(line.x),
                list(line.y),
                label=plain(line.label),
                color=line.color or PALETTE[i % len(PALETTE)],
                linestyle="--" if line.dashed else "-",
                linewidth=1.4,
            )
        if panel.logx:
            axes.set_xscale("log")
            # Plain numbers ("3", "40", "200") read faster than 3x10^0 on a latency axis.
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axes.xaxis.set_minor_formatter(NullFormatter())
        if panel.ylim_zero:
            axes.set_ylim(bottom=0)
        axes.set_title(plain(panel.title), fontsize=10, loc="left")
        axes.set_xlabel(plain(panel.xlabel), fontsize=9)
        axes.set_ylabel(plain(panel.ylabel), fontsize=9)
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
        labelled = [line for line in panel.lines if line.label]
        if labelled and len(labelled) <= 12:
            axes.legend(fontsize=7, loc="best", frameon=False)
    return figure_svg(figure)


def svg_line_chart(
    lines: Sequence[Line], *, title: str = "", xlabel: str = "", ylabel: str = "", logx: bool = False
) -> str:
    """One panel of lines: the building block other reports reuse (trends, stress steps)."""
    return svg_panels([Panel(lines, title, xlabel, ylabel, logx)])


def cdf_points(edges_ms: Sequence[float], counts: Sequence[int]) -> tuple[list[float], list[float]]:
    """Cumulative share of requests at each bucket's upper edge, from a compact histogram."""
    total = sum(counts)
    xs: list[float] = []
    ys: list[float] = []
    running = 0
    for upper, count in zip(edges_ms[1:], counts, strict=True):
        running += count
        if total and (count or xs):  # start at the first non-empty bucket
            xs.append(upper)
            ys.append(running / total)
        if total and running == total:
            break
    return xs, ys


def svg_latency_cdf(histograms: Mapping[str, tuple[Sequence[float], Sequence[int]]], *, title: str) -> str:
    """Latency distribution per series ('base', 'PR') as CDFs on a log time axis."""
    colors = {"base": BASE_COLOR, "PR": CANDIDATE_COLOR}
    lines = []
    for label, (edges, counts) in histograms.items():
        xs, ys = cdf_points(edges, counts)
        lines.append(Line(label, xs, ys, colors.get(label), dashed=label == "base"))
    return svg_line_chart(lines, title=title, xlabel="latency (ms)", ylabel="share of requests", logx=True)
