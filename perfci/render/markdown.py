"""The PR comment and the job summary: Markdown rendered from a Comparison through Jinja templates.

Over 400 lines because it is one view model (a table per section of comment.md.j2) that shrinks, section
by section, until the comment fits GitHub's limit; the sections share their row builders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

import jinja2

from perfci import verdict
from perfci.model import (
    Arm,
    Comparison,
    DatabaseCounters,
    EndpointComparison,
    QueryStat,
    ScenarioComparison,
    SloResult,
)
from perfci.render import format as fmt
from perfci.render.escape import code_text, markdown_text, mermaid_label
from perfci.testbed import SAME_MACHINE_COMMAND
from perfci.verdict import plural

MARKER = "<!-- perfci:summary -->"
# GitHub rejects an issue comment over 65,536 characters; keep a margin for the cut note.
GITHUB_COMMENT_LIMIT = 65_000
# The job summary's own limit is 1 MiB per step.
JOB_SUMMARY_LIMIT = 1_000_000
FAILURE_TEXT_CHARS = 600  # an infrastructure failure's message and hint: paths make them long
# Detail blocks in the order they are given up when the comment is too long: least read first.
OPTIONAL_SECTIONS: tuple[str, ...] = ("chart", "resources", "noise", "environment", "errors", "unchanged")
SECTION_TITLES = {
    "chart": "the p95 chart",
    "resources": "resources",
    "noise": "noise floor and MDE",
    "environment": "environment",
    "errors": "errors by kind",
    "unchanged": "unchanged endpoints",
}
CHART_MAX_ENDPOINTS = 12
TOP_QUERIES = 5
QUERY_CHANGE_WORTH_SHOWING = 0.10
# A ref is shown in a shell command only when it cannot carry shell syntax (git allows backticks and $).
_SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
# A fragment is allowed: the report link ends in #artifacts when the artifact's own id is unknown.
_SAFE_URL = re.compile(
    r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/+-]*)?(\?[A-Za-z0-9=&._%-]*)?(#[A-Za-z0-9._-]*)?$"
)


@dataclass(frozen=True)
class _Layout:
    """What goes into one rendering; shrunk step by step until the comment fits."""

    sections: frozenset[str] = frozenset(OPTIONAL_SECTIONS)
    max_rows: int | None = None  # rows per scenario table; None = all


@dataclass(frozen=True)
class _Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    hidden_rows: int = 0

    @property
    def lines(self) -> list[str]:
        out = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return out


@dataclass(frozen=True)
class _ScenarioView:
    title: str
    mode: str
    main: _Table | None
    folded: _Table | None
    folded_count: int
    notes: tuple[str, ...]
    chart: str | None
    noise: _Table | None
    resources: _Table | None
    queries: _Table | None
    database: _Table | None
    errors: _Table | None
    environment_differences: tuple[str, ...]
    sequential: str | None = None
    hidden: dict[str, int] = field(default_factory=dict)


@cache
def _environment() -> jinja2.Environment:
    # Markdown is not HTML: escaping is done per value by perfci.render.escape, never by Jinja.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("perfci", "templates"),
        autoescape=False,  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def headline(comparison: Comparison) -> tuple[str, str]:
    """(icon and verdict, against what): the two lines a reviewer reads first."""
    if comparison.failure is not None:  # no verdict: the second line says what to do
        return verdict.title(comparison), comparison.failure.hint
    return verdict.title(comparison), _against(comparison)


def _against(comparison: Comparison) -> str:
    candidate = code_text(comparison.candidate.label)
    base = comparison.base
    trials = max((s.candidate_trials for s in comparison.scenarios), default=0)
    if comparison.mode == "ab" and base is not None:
        schedules = {s.schedule for s in comparison.scenarios if s.mode == "ab"}
        kind = f"{schedules.pop()} pair" if len(schedules) == 1 else "pair"
        return (
            f"Same-runner A/B of {candidate} against {code_text(base.label)}: "
            f"{plural(trials, kind)} per scenario, profile {code_text(comparison.profile)}."
        )
    if comparison.mode == "baseline" and base is not None:
        when = f" from {base.created_at:%Y-%m-%d %H:%M} UTC" if base.created_at else ""
        return (
            f"{candidate} against the stored baseline of {code_text(base.label)}{when}, "
            f"{plural(trials, 'trial')} per scenario. Unpaired (another machine or day): it can only see "
            "changes larger than the minimum detectable effect below; `perfci run --ab <ref>` sees smaller ones."
        )
    if comparison.not_comparable and base is not None:
        return (
            f"{candidate} beside the stored baseline of {code_text(base.label)}, which is not comparable "
            f"({markdown_text(comparison.not_comparable, 300)}): figures side by side, no verdicts. "
            f"To compare on this machine run `{SAME_MACHINE_COMMAND}` (an A/B against the merge-base with main)."
        )
    return (
        f"{candidate}, profile {code_text(comparison.profile)}: no baseline to compare against, so absolute "
        "figures and SLOs only. Run `perfci baseline` on main to start comparing."
    )


def _slo_cell(results: Sequence[SloResult]) -> str:
    if not results:
        return fmt.NONE
    broken = [r for r in results if not r.ok]
    if not broken:
        return "✅"
    return "❌ " + "; ".join(_slo_text(r) for r in broken)


def _slo_text(result: SloResult) -> str:
    if result.metric == "error_rate":
        observed, limit = fmt.percent(result.observed, signed=False), fmt.percent(result.limit, signed=False)
        return f"errors {observed} &gt; {limit}"
    return f"{result.metric} {fmt.ms(result.observed)} &gt; {fmt.ms(result.limit)}"


def _change_cell(endpoint: EndpointComparison, pairs: int) -> str:
    metric = fmt.deciding_metric(endpoint)
    if endpoint.new_error_kinds and (metric is None or metric.verdict != endpoint.verdict):
        metric = None  # the new errors alone explain the verdict
        text = ""
    else:
        text = fmt.change_with_ci(metric) if metric else fmt.NONE
    if metric is not None and endpoint.verdict == "inconclusive" and metric.more_trials_needed:
        text += ", " + fmt.fresh_run_hint(pairs, metric.more_trials_needed)
    if endpoint.new_error_kinds:
        kinds = ", ".join(markdown_text(k, 60) for k in endpoint.new_error_kinds[:3])
        text += ("; " if text else "") + f"new errors: {kinds}"
    return text


def _compare_row(endpoint: EndpointComparison, slos: Sequence[SloResult], pairs: int) -> tuple[str, ...]:
    base, cand = endpoint.base_stats, endpoint.candidate_stats
    return (
        markdown_text(endpoint.endpoint),
        f"{fmt.ms(base.p50 if base else None)} → {fmt.ms(cand.p50)}",
        f"{fmt.ms(base.p95 if base else None)} → {fmt.ms(cand.p95)}",
        _change_cell(endpoint, pairs),
        fmt.VERDICT_LABEL[endpoint.verdict],
        _slo_cell(slos),
    )


def absolute_cells(endpoint: EndpointComparison) -> tuple[str, ...]:
    """Endpoint, requests, rate, p50, p95, p99, errors: the candidate's figures as escaped table cells."""
    s = endpoint.candidate_stats
    return (
        markdown_text(endpoint.endpoint),
        str(s.n),
        fmt.rate(s.rps),
        fmt.ms(s.p50),
        fmt.ms(s.p95),
        fmt.ms(s.p99),
        f"{s.errors} ({fmt.percent(s.error_rate, signed=False)})",
    )


def _absolute_row(endpoint: EndpointComparison, slos: Sequence[SloResult]) -> tuple[str, ...]:
    return (*absolute_cells(endpoint), _slo_cell(slos))


def _side_by_side_row(endpoint: EndpointComparison, slos: Sequence[SloResult]) -> tuple[str, ...]:
    """Another testbed's stored figures beside this run's: no change column, no verdict (not comparable)."""
    base, cand = endpoint.base_stats, endpoint.candidate_stats
    return (
        markdown_text(endpoint.endpoint),
        f"{fmt.ms(base.p50 if base else None)} · {fmt.ms(cand.p50)}",
        f"{fmt.ms(base.p95 if base else None)} · {fmt.ms(cand.p95)}",
        str(cand.n),
        f"{cand.errors} ({fmt.percent(cand.error_rate, signed=False)})",
        _slo_cell(slos),
    )


COMPARE_HEADER = ("Endpoint", "p50 base → PR", "p95 base → PR", "Change (CI)", "Verdict", "SLO")
ABSOLUTE_HEADER = ("Endpoint", "Requests", "Rate", "p50", "p95", "p99", "Errors", "SLO")
SIDE_BY_SIDE_HEADER = ("Endpoint", "p50 stored · here", "p95 stored · here", "Requests", "Errors", "SLO")


def _limit(rows: Sequence[tuple[str, ...]], max_rows: int | None) -> tuple[tuple[tuple[str, ...], ...], int]:
    if max_rows is None or len(rows) <= max_rows:
        return tuple(rows), 0
    return tuple(rows[:max_rows]), len(rows) - max_rows


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], max_rows: int | None) -> _Table | None:
    if not rows:
        return None
    kept, hidden = _limit(rows, max_rows)
    return _Table(header, kept, hidden)


def _ordered(endpoints: Iterable[EndpointComparison]) -> list[EndpointComparison]:
    return sorted(endpoints, key=lambda e: (fmt.VERDICT_ORDER[e.verdict], e.endpoint))


def _scenario_view(scenario: ScenarioComparison, layout: _Layout) -> _ScenarioView:
    slos: dict[str, list[SloResult]] = {}
    for result in scenario.slos:
        slos.setdefault(result.endpoint, []).append(result)
    breached = {r.endpoint for r in scenario.slos if not r.ok}
    endpoints = _ordered(scenario.endpoints)
    compare = scenario.mode != "none"
    if compare:
        shown = [e for e in endpoints if e.verdict != "no_change" or e.endpoint in breached]
        quiet = [e for e in endpoints if e.verdict == "no_change" and e.endpoint not in breached]
        pairs = scenario.candidate_trials
        main = _table(
            COMPARE_HEADER, [_compare_row(e, slos.get(e.endpoint, []), pairs) for e in shown], layout.max_rows
        )
        folded_rows = [_compare_row(e, slos.get(e.endpoint, []), pairs) for e in quiet]
        folded = _table(COMPARE_HEADER, folded_rows, layout.max_rows) if "unchanged" in layout.sections else None
        folded_count = len(quiet)
    elif any(e.base_stats for e in endpoints):  # another testbed's baseline: shown, not judged
        rows = [_side_by_side_row(e, slos.get(e.endpoint, [])) for e in endpoints]
        main, folded, folded_count = _table(SIDE_BY_SIDE_HEADER, rows, layout.max_rows), None, 0
    else:
        rows = [_absolute_row(e, slos.get(e.endpoint, [])) for e in endpoints]
        main, folded, folded_count = _table(ABSOLUTE_HEADER, rows, layout.max_rows), None, 0
    notes = tuple(markdown_text(n, 300) for n in [*scenario.notes, *scenario.flags])
    return _ScenarioView(
        title=code_text(scenario.scenario, 80),
        mode=scenario.mode,
        main=main,
        folded=folded,
        folded_count=folded_count,
        notes=notes,
        chart=_chart(scenario) if "chart" in layout.sections else None,
        noise=_noise_table(endpoints, layout.max_rows) if "noise" in layout.sections and compare else None,
        resources=_resources_table(scenario) if "resources" in layout.sections else None,
        queries=_queries_table(scenario.database) if "resources" in layout.sections else None,
        database=_database_table(scenario.database) if "resources" in layout.sections else None,
        errors=_errors_table(endpoints, layout.max_rows) if "errors" in layout.sections else None,
        environment_differences=tuple(markdown_text(d, 200) for d in scenario.environment_differences),
        sequential=fmt.sequential_line(scenario),
    )


def _chart(scenario: ScenarioComparison) -> str | None:
    """A Mermaid bar (base) and line (PR) chart of p95 per endpoint, for the slowest endpoints."""
    endpoints = sorted(scenario.endpoints, key=lambda e: -e.candidate_stats.p95)[:CHART_MAX_ENDPOINTS]
    if not endpoints:
        return None
    labels = ", ".join(f'"{mermaid_label(e.endpoint)}"' for e in endpoints)
    pr = ", ".join(f"{e.candidate_stats.p95:.1f}" for e in endpoints)
    lines = ["xychart-beta", f'    title "p95 latency (ms) of {mermaid_label(scenario.scenario)}"']
    lines.append(f"    x-axis [{labels}]")
    lines.append('    y-axis "ms"')
    if scenario.mode != "none" and all(e.base_stats for e in endpoints):
        base = ", ".join(f"{e.base_stats.p95:.1f}" for e in endpoints if e.base_stats)
        lines.append(f"    bar [{base}]")
        lines.append(f"    line [{pr}]")
    else:
        lines.append(f"    bar [{pr}]")
    return "\n".join(lines)


def _noise_table(endpoints: Sequence[EndpointComparison], max_rows: int | None) -> _Table | None:
    rows = [
        (
            markdown_text(e.endpoint),
            *(fmt.percent(e.noise.cv[m], signed=False) if m in e.noise.cv else fmt.NONE for m in ("p50", "p95")),
            *(fmt.mde_cell(e.noise, m) for m in ("p50", "p95")),
        )
        for e in endpoints
    ]
    header = ("Endpoint", "CV p50", "CV p95", "MDE p50", "MDE p95")
    return _table(header, rows, max_rows)


def _resources_table(scenario: ScenarioComparison) -> _Table | None:
    rows = [
        (
            markdown_text(fmt.resource_role(peak.source), 60),
            fmt.arm_label(arm),
            f"{peak.cpu_percent_peak:.0f} %",
            f"{peak.cpu_percent_mean:.0f} %",
            f"{peak.rss_mb_peak:.0f} MB",
        )
        for arm, peak in fmt.resource_rows(scenario.resources)
    ]
    return _table(("Role", "Arm", "CPU peak", "CPU mean", "Memory peak"), rows, None)


def _database_table(database: Mapping[Arm, DatabaseCounters]) -> _Table | None:
    base, cand = database.get("base"), database.get("candidate")
    if cand is None:
        return None
    fields = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_fetched", "temp_bytes", "deadlocks")
    rows = [
        (name, str(getattr(base, name)) if base else fmt.NONE, str(getattr(cand, name)))
        for name in fields
        if getattr(cand, name) or (base and getattr(base, name))
    ]
    return _Table(("PostgreSQL counter", "base", "PR"), tuple(rows))


def _queries_table(database: Mapping[Arm, DatabaseCounters]) -> _Table | None:
    """Top queries whose mean time changed by more than 10 % (or that are new), largest change first."""
    base = {q.query: q for q in (database["base"].top_queries if "base" in database else [])}
    cand = database["candidate"].top_queries if "candidate" in database else []
    changed: list[tuple[float, QueryStat, QueryStat | None]] = []
    for query in cand:
        before = base.get(query.query)
        change = (query.mean_ms / before.mean_ms - 1) if before and before.mean_ms > 0 else float("inf")
        if abs(change) >= QUERY_CHANGE_WORTH_SHOWING:
            changed.append((change, query, before))
    changed.sort(key=lambda item: -abs(item[0]))
    rows = [
        (
            code_text(query.query, 100),
            f"{fmt.ms(before.mean_ms) if before else 'new'} → {fmt.ms(query.mean_ms)}",
            f"{before.calls if before else 0} → {query.calls}",
            fmt.percent(change) if before else "new",
        )
        for change, query, before in changed[:TOP_QUERIES]
    ]
    return _table(("Query", "Mean time base → PR", "Calls", "Change"), rows, None)


def _errors_table(endpoints: Sequence[EndpointComparison], max_rows: int | None) -> _Table | None:
    rows: list[tuple[str, ...]] = []
    for e in endpoints:
        for kind in sorted(set(e.base_errors) | set(e.candidate_errors)):
            new = " 🆕" if kind in e.new_error_kinds else ""
            rows.append(
                (
                    markdown_text(e.endpoint),
                    markdown_text(kind, 120) + new,
                    str(e.base_errors.get(kind, 0)),
                    str(e.candidate_errors.get(kind, 0)),
                )
            )
    return _table(("Endpoint", "Error", "base", "PR"), rows, max_rows)


def _environment_lines(comparison: Comparison) -> list[str]:
    env = comparison.candidate.environment
    lines = []
    if env is not None:
        lines.append(
            f"PR: {markdown_text(env.runner_os, 80)}, {markdown_text(env.cpu_model, 80)} ({env.cores} cores), "
            f"Python {markdown_text(env.python, 20)}, Locust {markdown_text(env.locust_version, 20)}, "
            f"perfci {markdown_text(env.perfci_version, 20)}, target {markdown_text(env.target_kind, 40)}"
            + (f", CPUs {markdown_text(env.cpu_idle, 60)}" if env.cpu_idle_recorded else "")
        )
    base_env = comparison.base.environment if comparison.base else None
    if base_env is not None and (comparison.mode == "baseline" or comparison.not_comparable):
        lines.append(
            f"Baseline: {markdown_text(base_env.runner_os, 80)}, {markdown_text(base_env.cpu_model, 80)} "
            f"({base_env.cores} cores), target {markdown_text(base_env.target_kind, 40)}"
        )
    return lines


def _reproduce(comparison: Comparison) -> str:
    if comparison.not_comparable:
        return SAME_MACHINE_COMMAND  # the stored baseline's commit measured here would be an A/B anyway
    base = comparison.base
    ref = None
    if base is not None:
        if base.commit and re.fullmatch(r"[0-9a-f]{7,40}", base.commit):
            ref = base.commit[:12]
        elif base.ref and _SAFE_REF.match(base.ref):
            ref = base.ref
    return f"perfci run --ab {ref or 'main'}"


def _links(comparison: Comparison) -> list[str]:
    links = []
    if comparison.run_url and _SAFE_URL.match(comparison.run_url):
        links.append(f"[workflow run]({comparison.run_url})")
    if comparison.report_url and _SAFE_URL.match(comparison.report_url):
        links.append(f"[HTML report and data]({comparison.report_url})")
    return links


def _render(comparison: Comparison, marker: str, layout: _Layout, cut: Sequence[str]) -> str:
    title, against = headline(comparison)
    if comparison.failure is not None:  # its words come from the run (an artifact's: a stranger's): inert
        title, against = markdown_text(title, FAILURE_TEXT_CHARS), markdown_text(against, FAILURE_TEXT_CHARS)
    template = _environment().get_template("comment.md.j2")
    return template.render(
        marker=marker,
        fingerprint=verdict.fingerprint(comparison) if marker else "",
        title=title,
        against=against,
        scenarios=[_scenario_view(s, layout) for s in comparison.scenarios],
        sections=layout.sections,
        environment=_environment_lines(comparison) if "environment" in layout.sections else [],
        reproduce=_reproduce(comparison),
        links=_links(comparison),
        alpha=comparison.alpha,
        power=f"{comparison.power * 100:.0f} %",
        adjustment=adjustment_phrase(comparison),
        budget=fmt.budget_line(comparison),
        confidence=f"{(1 - comparison.alpha) * 100:.0f} %",
        mode=comparison.mode,
        cut=", ".join(cut),
    )


def adjustment_phrase(comparison: Comparison) -> str:
    """How the p-values were adjusted for the number of tests, named for a reader: 'Holm-adjusted p'."""
    methods = {s.adjustment for s in comparison.scenarios if s.mode != "none"}
    if comparison.judged_tests:
        return f"Holm-adjusted p over the PR's {comparison.judged_tests} judged tests"
    if methods == {"max-t"}:
        return "p adjusted for the number of tests (max-T over swapped pairs)"
    if methods == {"holm"} or not methods:
        return "Holm-adjusted p"
    return "p adjusted for the number of tests (max-T over swapped pairs where there were enough pairs, else Holm)"


def render_comment(comparison: Comparison, *, marker: str = MARKER, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    """The sticky PR comment. Too long for GitHub, it drops detail blocks (least read first), then table rows,
    and says what it cut."""
    layout = _Layout()
    cut: list[str] = []
    text = _render(comparison, marker, layout, cut)
    for section in OPTIONAL_SECTIONS:
        if len(text) <= max_chars:
            return text
        layout = replace(layout, sections=layout.sections - {section})
        cut.append(SECTION_TITLES[section])
        text = _render(comparison, marker, layout, cut)
    rows = max(len(s.endpoints) for s in comparison.scenarios) if comparison.scenarios else 0
    while len(text) > max_chars and rows > 1:
        rows //= 2
        layout = replace(layout, max_rows=rows)
        text = _render(comparison, marker, layout, [*cut, f"table rows beyond {rows} per scenario"])
    if len(text) > max_chars:
        # Only a pathological number of scenarios gets here; a clipped comment beats a failed publish.
        note = "\n\n_Cut to fit GitHub's comment limit; the HTML report has everything._\n"
        text = text[: max_chars - len(note)] + note
    return text


def render_job_summary(comparison: Comparison) -> str:
    """The same summary for `$GITHUB_STEP_SUMMARY`: no sticky marker, the job summary's larger limit."""
    return render_comment(comparison, marker="", max_chars=JOB_SUMMARY_LIMIT)
