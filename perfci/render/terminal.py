"""The terminal summary: one rich table per scenario, absolute figures when there is nothing to compare."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from perfci import verdict
from perfci.model import Comparison, EndpointComparison, ScenarioComparison, SloResult
from perfci.render import format as fmt
from perfci.render.escape import one_line

_VERDICT_STYLE = {"regression": "bold red", "inconclusive": "yellow", "improvement": "green", "no_change": "dim"}
_VERDICT_WORD = {
    "regression": "REGRESSION",
    "inconclusive": "inconclusive",
    "improvement": "faster",
    "no_change": "same",
}


def _slo(results: Sequence[SloResult]) -> Text:
    if not results:
        return Text(fmt.NONE, style="dim")
    broken = [r for r in results if not r.ok]
    if not broken:
        return Text("ok", style="green")
    parts = []
    for r in broken:
        if r.metric == "error_rate":
            parts.append(f"errors {fmt.percent(r.observed, signed=False)} > {fmt.percent(r.limit, signed=False)}")
        else:
            parts.append(f"{r.metric} {fmt.ms(r.observed)} > {fmt.ms(r.limit)}")
    return Text("BREACH " + "; ".join(parts), style="bold red")


def _name(endpoint: EndpointComparison) -> Text:
    # Text() never interprets [markup], so an endpoint name cannot restyle the table.
    return Text(one_line(endpoint.endpoint, 80))


def _compare_table(scenario: ScenarioComparison, slos: dict[str, list[SloResult]]) -> Table:
    table = Table(title=f"{one_line(scenario.scenario, 60)} ({scenario.mode})", title_justify="left")
    for column in ("endpoint", "p50 base", "p50 PR", "p95 base", "p95 PR", "change (CI)", "verdict", "SLO"):
        table.add_column(column, justify="left" if column in ("endpoint", "change (CI)", "verdict", "SLO") else "right")
    for e in sorted(scenario.endpoints, key=lambda e: (fmt.VERDICT_ORDER[e.verdict], e.endpoint)):
        base, cand = e.base_stats, e.candidate_stats
        metric = fmt.deciding_metric(e)
        errors_only = bool(e.new_error_kinds) and (metric is None or metric.verdict != e.verdict)
        change = "" if errors_only else (fmt.change_with_ci(metric) if metric else fmt.NONE)
        if e.new_error_kinds:
            change += ("; " if change else "") + f"new errors: {one_line(', '.join(e.new_error_kinds), 60)}"
        table.add_row(
            _name(e),
            fmt.ms(base.p50 if base else None),
            fmt.ms(cand.p50),
            fmt.ms(base.p95 if base else None),
            fmt.ms(cand.p95),
            Text(change),
            Text(_VERDICT_WORD[e.verdict], style=_VERDICT_STYLE[e.verdict]),
            _slo(slos.get(e.endpoint, [])),
        )
    return table


def _side_by_side_table(scenario: ScenarioComparison, slos: dict[str, list[SloResult]]) -> Table:
    """Another testbed's stored figures beside this run's, without change or verdict (not comparable)."""
    title = f"{one_line(scenario.scenario, 60)} (stored baseline not comparable: figures only)"
    table = Table(title=title, title_justify="left")
    for column in ("endpoint", "p50 stored", "p50 here", "p95 stored", "p95 here", "requests", "errors", "SLO"):
        table.add_column(column, justify="left" if column in ("endpoint", "SLO") else "right")
    for e in sorted(scenario.endpoints, key=lambda e: e.endpoint):
        base, s = e.base_stats, e.candidate_stats
        table.add_row(
            _name(e),
            fmt.ms(base.p50 if base else None),
            fmt.ms(s.p50),
            fmt.ms(base.p95 if base else None),
            fmt.ms(s.p95),
            str(s.n),
            f"{s.errors} ({fmt.percent(s.error_rate, signed=False)})",
            _slo(slos.get(e.endpoint, [])),
        )
    return table


def _absolute_table(scenario: ScenarioComparison, slos: dict[str, list[SloResult]]) -> Table:
    table = Table(title=f"{one_line(scenario.scenario, 60)} (no baseline)", title_justify="left")
    table.add_column("endpoint")
    for column in ("requests", "rps", "p50", "p90", "p95", "p99", "mean", "errors"):
        table.add_column(column, justify="right")
    table.add_column("SLO")
    for e in sorted(scenario.endpoints, key=lambda e: e.endpoint):
        s = e.candidate_stats
        table.add_row(
            _name(e),
            str(s.n),
            fmt.rate(s.rps),
            *(fmt.ms(v) for v in (s.p50, s.p90, s.p95, s.p99, s.mean)),
            f"{s.errors} ({fmt.percent(s.error_rate, signed=False)})",
            _slo(slos.get(e.endpoint, [])),
        )
    return table


def _resources_table(scenario: ScenarioComparison) -> Table | None:
    if not scenario.resources:
        return None
    table = Table(title="resource peaks", title_justify="left")
    for column in ("role", "arm", "CPU peak", "CPU mean", "memory peak"):
        table.add_column(column, justify="right" if column.startswith(("CPU", "memory")) else "left")
    for arm, p in fmt.resource_rows(scenario.resources):
        table.add_row(
            Text(one_line(fmt.resource_role(p.source), 40)),
            fmt.arm_label(arm),
            f"{p.cpu_percent_peak:.0f} %",
            f"{p.cpu_percent_mean:.0f} %",
            f"{p.rss_mb_peak:.0f} MB",
        )
    return table


def render_terminal(comparison: Comparison, *, width: int = 140, color: bool = False) -> str:
    """The summary as text for a terminal (ANSI colours only when `color`)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False)
    title = verdict.title(comparison)
    console.print(Text(title.replace("perfci: ", "perfci  "), style="bold"))
    if comparison.not_comparable and comparison.base is not None:
        console.print(
            Text(
                f"stored baseline {one_line(comparison.base.label, 80)} not comparable: "
                f"{one_line(comparison.not_comparable, 200)}; compare on this machine with `perfci run`"
            )
        )
    if comparison.base is not None and comparison.mode != "none":
        kind = "same-runner A/B" if comparison.mode == "ab" else "stored baseline (unpaired)"
        console.print(
            Text(f"{kind} against {one_line(comparison.base.label, 80)}; PR {one_line(comparison.candidate.label, 80)}")
        )
    budget = fmt.budget_line(comparison)
    if budget:
        console.print(Text(budget))
    for scenario in comparison.scenarios:
        slos: dict[str, list[SloResult]] = {}
        for result in scenario.slos:
            slos.setdefault(result.endpoint, []).append(result)
        console.print()
        if scenario.mode != "none":
            table = _compare_table(scenario, slos)
        elif any(e.base_stats for e in scenario.endpoints):
            table = _side_by_side_table(scenario, slos)
        else:
            table = _absolute_table(scenario, slos)
        console.print(table)
        sequential = fmt.sequential_line(scenario)
        if sequential:
            console.print(Text(sequential))
        resources = _resources_table(scenario)
        if resources is not None:
            console.print(resources)
        for note in [*scenario.notes, *scenario.flags]:
            console.print(Text("note: " + one_line(note, 200), style="yellow"))
    return buffer.getvalue()
