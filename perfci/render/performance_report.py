"""docs/performance_test_report.md rendered: a real measurement and stress of the service, written up.

Pure: `render_performance_report` makes the Markdown from a `ReportInputs` record, which
`perfci report-doc` (perfci/commands/report_doc.py) gathers from one run directory; tests feed fixtures.
Everything the report states comes from the run directory it names, which keeps the raw data. Over 400
lines because it is one document of ten sections, each a short function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from perfci.analysis.recommend import Finding
from perfci.config import Profile
from perfci.measure.stress import StressRun
from perfci.model import Comparison, DatabaseCounters, EndpointComparison, Environment, ResourcePeak, SloSpec
from perfci.render import format as fmt
from perfci.render.escape import code_text, markdown_text
from perfci.render.markdown import absolute_cells

SEVERITY_LABEL = {"critical": "🔴 critical", "warning": "🟡 warning", "info": "🔵 info"}


@dataclass(frozen=True)
class Machine:
    """What the figures depend on beyond `Environment`: memory, the service's workers, other load."""

    memory_gb: float | None = None
    load_average_before: tuple[float, float, float] | None = None  # 1, 5, 15 min, when the run began
    load_average_after: tuple[float, float, float] | None = None
    service_workers: int = 1
    locust_workers: int = 0


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report states; built from one run directory by `gather_inputs`."""

    generated_at: datetime
    command: str  # the exact command that reproduces the report
    run_dir: str  # where the raw data of this report is kept
    commit: str | None
    dirty: bool
    environment: Environment
    machine: Machine
    target_description: str
    database_engine: str  # "PostgreSQL", "SQLite", or a sentence for a target perfci does not run
    profile_name: str
    profile: Profile
    scenarios: Sequence[str]
    scenario_descriptions: Mapping[str, str]
    slos: Sequence[SloSpec]
    service_env: Mapping[str, str]
    comparison: Comparison
    stress: Sequence[StressRun] = ()
    stress_budget_s: float | None = None
    findings: Sequence[Finding] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; `align` is one character per column ("l" or "r"), right-aligned by default."""
    marks = [":---" if (align[i : i + 1] or "r") == "l" else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _slo_text(slo: SloSpec) -> str:
    limits = []
    if slo.p95_ms is not None:
        limits.append(f"p95 < {slo.p95_ms:g} ms")
    if slo.p99_ms is not None:
        limits.append(f"p99 < {slo.p99_ms:g} ms")
    if slo.error_rate is not None:
        limits.append(f"errors < {fmt.percent(slo.error_rate, signed=False)}")
    return ", ".join(limits) or fmt.NONE


def _summary(inputs: ReportInputs) -> list[str]:
    slos = [r for s in inputs.comparison.scenarios for r in s.slos]
    breached = [r for r in slos if not r.ok]
    lines = ["## Summary", ""]
    if slos:
        verdict = "all met" if not breached else f"{len(breached)} breached"
        lines.append(f"- SLOs: {len(slos) - len(breached)} of {len(slos)} checks met ({verdict}).")
    else:
        lines.append("- SLOs: no SLO applies to the measured endpoints.")
    for run in inputs.stress:
        lines.append(f"- Breaking point of {_stress_sentence(run)}")
    if not inputs.stress:
        lines.append("- Breaking points: no scenario was stressed in this run.")
    counts = {s: sum(f.severity == s for f in inputs.findings) for s in ("critical", "warning", "info")}
    found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    lines += [f"- Findings: {found} (see [Findings and recommendations](#findings-and-recommendations)).", ""]
    return lines


def _stress_sentence(run: StressRun) -> str:
    result = run.breaking_point
    unit = "users" if result.model == "closed" else "req/s offered"
    name = markdown_text(run.scenario)
    if result.max_rps_within_slo is None:
        core = f"{name}: no step stayed within SLO"
    else:
        core = f"{name}: {result.max_rps_within_slo:.0f} req/s within SLO (at {result.max_offered_within_slo:g} {unit})"
    if result.first_failure is not None:
        core += f"; first failure at {result.first_failure.offered:g} {unit}: {result.first_failure.breach.describe()}"
    elif result.plateau_offered is not None:
        core += f"; throughput stopped growing at {result.plateau_offered:g} {unit}"
    else:
        core += "; it did not break within the stress"
    core += f"; {_saturation_text(run)}."
    if not result.valid:
        core += " **Invalid: the load generator was the bottleneck.**"
    return core


def _saturation_text(run: StressRun) -> str:
    result = run.breaking_point
    if result.saturated:
        return "saturated: " + ", ".join(
            f"{s.resource} CPU {s.cpu_percent:.0f} % of {s.capacity_percent:.0f} % ({markdown_text(s.source)})"
            for s in result.saturated
        )
    if result.broke:
        return "no CPU was saturated: look at locks, the connection pool or I/O"
    return "no resource was saturated"


def _environment(inputs: ReportInputs) -> list[str]:
    env, machine = inputs.environment, inputs.machine
    rows = [
        ("Operating system", env.runner_os),
        ("CPU", f"{env.cpu_model}, {env.cores} cores"),
        ("Memory", f"{machine.memory_gb:.1f} GB" if machine.memory_gb is not None else fmt.NONE),
        ("Python", env.python),
        ("Locust", env.locust_version + (f", {machine.locust_workers} workers" if machine.locust_workers else "")),
        ("perfci", env.perfci_version),
        ("Target", inputs.target_description or env.target_kind),
        ("Database", inputs.database_engine),
        ("Service workers", str(machine.service_workers)),
        ("Service settings", ", ".join(f"{k}={v}" for k, v in sorted(inputs.service_env.items())) or fmt.NONE),
        ("Code", f"{fmt.short_sha(inputs.commit)}{' with uncommitted changes' if inputs.dirty else ''}"),
    ]
    if machine.load_average_before is not None:
        before = " / ".join(f"{v:.2f}" for v in machine.load_average_before)
        after = " / ".join(f"{v:.2f}" for v in machine.load_average_after) if machine.load_average_after else "?"
        rows.append(("Load average (1/5/15 min)", f"{before} before, {after} after"))
    lines = ["## Environment", ""]
    lines += _table(["", ""], [(name, markdown_text(value, 300)) for name, value in rows], "ll")
    if env.image_ids:
        lines += [
            "Images: " + ", ".join(f"{markdown_text(k)} {code_text(v[:19])}" for k, v in env.image_ids.items()),
            "",
        ]
    lines += [
        "The load generator (Locust) ran on the same machine as the service, so both share its cores; "
        "the load average shows what else ran at the time.",
        "",
    ]
    return lines


def _method(inputs: ReportInputs) -> list[str]:
    p = inputs.profile
    trials = "trial" if p.trials == 1 else "trials"
    lines = [
        "## Scenarios and SLOs",
        "",
        f"Profile **{markdown_text(inputs.profile_name)}**: {p.trials} {trials} per scenario, each {p.warmup_s:g} s "
        f"of warm-up (not measured) then {p.duration_s:g} s measured, with {p.users} users spawned at "
        f"{p.spawn_rate:g}/s (open-model scenarios: {p.arrival_rate:g} requests/s offered). Figures per endpoint "
        "are the median over trials of each trial's statistic, computed from perfci's raw request timings.",
        "",
    ]
    lines += _table(
        ["scenario", "what it does"],
        [
            (markdown_text(s), markdown_text(inputs.scenario_descriptions.get(s, fmt.NONE), 300))
            for s in inputs.scenarios
        ],
        "ll",
    )
    if inputs.slos:
        lines += _table(
            ["endpoint", "scenario", "limits"],
            [(markdown_text(s.endpoint), markdown_text(s.scenario or "all"), _slo_text(s)) for s in inputs.slos],
            "lll",
        )
    else:
        lines += ["No SLOs are configured.", ""]
    return lines


def _endpoint_row(e: EndpointComparison) -> tuple[str, ...]:
    cv = e.noise.cv.get("p95")
    return (*absolute_cells(e), fmt.percent(cv, signed=False) if cv is not None else fmt.NONE)


def _results(inputs: ReportInputs) -> list[str]:
    lines = ["## Results per endpoint", ""]
    for scenario in inputs.comparison.scenarios:
        lines += [f"### {markdown_text(scenario.scenario)}", ""]
        lines += [f"> {markdown_text(note, 300)}" for note in (*scenario.flags, *scenario.notes)]
        if scenario.flags or scenario.notes:
            lines.append("")
        lines += _table(
            ["endpoint", "requests", "rate", "p50", "p95", "p99", "errors", "p95 CV"],
            [_endpoint_row(e) for e in sorted(scenario.endpoints, key=lambda e: e.endpoint)],
            "l",
        )
        kinds = [(e.endpoint, k, n) for e in scenario.endpoints for k, n in sorted(e.candidate_errors.items())]
        if kinds:
            lines += _table(
                ["endpoint", "error", "count"],
                [(markdown_text(e), markdown_text(k), str(n)) for e, k, n in kinds],
                "llr",
            )
    lines += ["_p95 CV: the between-trial variation of p95, the noise any comparison must see past._", ""]
    return lines


def _slo_verdicts(inputs: ReportInputs) -> list[str]:
    rows = []
    for scenario in inputs.comparison.scenarios:
        for r in scenario.slos:
            as_rate = r.metric == "error_rate"
            limit = fmt.percent(r.limit, signed=False) if as_rate else fmt.ms(r.limit)
            observed = fmt.percent(r.observed, signed=False) if as_rate else fmt.ms(r.observed)
            rows.append(
                (
                    markdown_text(scenario.scenario),
                    markdown_text(r.endpoint),
                    r.metric,
                    limit,
                    observed,
                    "✅ met" if r.ok else "❌ breached",
                )
            )
    lines = ["## SLO verdicts", ""]
    if not rows:
        return [*lines, "No SLO applied to an endpoint this run measured.", ""]
    return lines + _table(["scenario", "endpoint", "metric", "limit", "observed", "verdict"], rows, "lllrrl")


def _breaking_points(inputs: ReportInputs) -> list[str]:
    from perfci.render.stress import stress_markdown

    lines = ["## Breaking points", ""]
    if not inputs.stress:
        return [*lines, "No scenario was stressed in this run.", ""]
    budget = f" within a budget of {inputs.stress_budget_s:g} s" if inputs.stress_budget_s else ""
    lines += [
        "Each stressed scenario ran one short trial per load step, the load growing geometrically until a step "
        f"broke an SLO, passed the error threshold, or stopped adding throughput{budget}; a few shorter steps "
        "then narrowed the break. The breaking point is the highest request rate sustained for a whole step "
        "within SLO.",
        "",
    ]
    rows = []
    for run in inputs.stress:
        r = run.breaking_point
        unit = "users" if r.model == "closed" else "req/s"
        failure = r.first_failure.breach.describe() if r.first_failure else fmt.NONE
        rows.append(
            (
                markdown_text(run.scenario),
                f"{r.max_rps_within_slo:.0f} req/s" if r.max_rps_within_slo is not None else fmt.NONE,
                f"{r.max_offered_within_slo:g} {unit}" if r.max_offered_within_slo is not None else fmt.NONE,
                f"{r.knee_offered:g} {unit}" if r.knee_offered is not None else fmt.NONE,
                markdown_text(failure, 200),
                markdown_text(_saturation_text(run), 200),
                "yes" if r.valid else "**no**",
            )
        )
    lines += _table(
        ["scenario", "max rate within SLO", "at", "knee", "first failure", "saturated resource", "valid"],
        rows,
        "lrrrlll",
    )
    for run in inputs.stress:
        # The steps as `perfci stress` prints them, without its own section heading.
        lines += [f"### {markdown_text(run.scenario)}", "", *stress_markdown([run]).splitlines()[2:], ""]
    return lines


def _peak_row(peak: ResourcePeak) -> tuple[str, ...]:
    return (
        markdown_text(fmt.resource_role(peak.source)),
        f"{peak.cpu_percent_peak:.0f} %",
        f"{peak.cpu_percent_mean:.0f} %",
        f"{peak.rss_mb_peak:.0f} MB",
    )


def _resources(inputs: ReportInputs) -> list[str]:
    lines = ["## Resources", ""]
    rows = [
        (markdown_text(s.scenario), *_peak_row(p))
        for s in inputs.comparison.scenarios
        for arm, p in fmt.resource_rows(s.resources)
        if arm == "candidate"
    ]
    if not rows:
        return [*lines, "No resource samples were recorded in this run.", ""]
    lines += _table(["scenario", "role", "CPU peak", "CPU mean", "memory peak"], rows, "ll")
    lines += ["_CPU in percent of one core (200 % = two cores busy), over the measured windows._", ""]
    return lines


def _database_rows(scenario: str, d: DatabaseCounters) -> tuple[str, ...]:
    blocks = d.blks_hit + d.blks_read
    hit = fmt.percent(d.blks_hit / blocks, signed=False) if blocks else fmt.NONE
    return (
        markdown_text(scenario),
        str(d.xact_commit),
        str(d.xact_rollback),
        hit,
        str(d.tup_fetched),
        str(d.tup_inserted + d.tup_updated + d.tup_deleted),
        str(d.temp_bytes),
        str(d.deadlocks),
    )


def _database(inputs: ReportInputs) -> list[str]:
    lines = ["## Database", ""]
    counters = [(s.scenario, s.database["candidate"]) for s in inputs.comparison.scenarios if "candidate" in s.database]
    if inputs.database_engine == "SQLite":
        return [
            *lines,
            "The service ran on SQLite (an embedded file in the run directory), so there are no PostgreSQL "
            "counters. Run with the compose target, or the process target with `--database-url`, to measure "
            "PostgreSQL.",
            "",
        ]
    if not counters:
        return [*lines, f"Database: {markdown_text(inputs.database_engine)}; no counters were recorded.", ""]
    lines += ["PostgreSQL counters (pg_stat_database deltas), summed over the measured trials:", ""]
    lines += _table(
        [
            "scenario",
            "commits",
            "rollbacks",
            "cache hits",
            "tuples fetched",
            "tuples written",
            "temp bytes",
            "deadlocks",
        ],
        [_database_rows(name, d) for name, d in counters],
        "l",
    )
    queries = [(name, q) for name, d in counters for q in d.top_queries]
    if queries:
        lines += ["Top queries by total time (pg_stat_statements):", ""]
        lines += _table(
            ["scenario", "query", "calls", "mean", "total"],
            [
                (
                    markdown_text(name),
                    code_text(" ".join(q.query.split()), 200),
                    str(q.calls),
                    fmt.ms(q.mean_ms),
                    fmt.ms(q.total_ms),
                )
                for name, q in queries
            ],
            "ll",
        )
    return lines


def _findings(inputs: ReportInputs) -> list[str]:
    lines = ["## Findings and recommendations", ""]
    if not inputs.findings:
        return [
            *lines,
            "No rule fired: no errors, no saturated load generator, no pool waits, no slower queries, "
            "no CPU-bound service with an idle database, no hashing-bound login.",
            "",
        ]
    for f in inputs.findings:
        lines.append(f"- {SEVERITY_LABEL[f.severity]} **{markdown_text(f.title)}**: {markdown_text(f.detail, 1000)}")
    return [*lines, ""]


def _reproduce(inputs: ReportInputs) -> list[str]:
    return [
        "## How to reproduce",
        "",
        "From a checkout of this repository:",
        "",
        "```sh",
        inputs.command,
        "```",
        "",
        f"The raw samples, resource samples and per-trial figures of this report were kept in "
        f"`{inputs.run_dir}` (with `report.html`, its charts and the HTML version of these findings). "
        "Figures from another machine will differ: compare runs on the same machine, as `perfci run --ab main` "
        "does.",
        "",
    ]


def render_performance_report(inputs: ReportInputs) -> str:
    """The whole report as Markdown, section by section."""
    lines = [
        "# Performance test report",
        "",
        f"Generated on {inputs.generated_at:%Y-%m-%d %H:%M} UTC by `{inputs.command}` from commit "
        f"{fmt.short_sha(inputs.commit)}{' (with uncommitted changes)' if inputs.dirty else ''}. "
        "Regenerate it with that command rather than editing it.",
        "",
    ]
    lines += [f"> {markdown_text(note, 300)}" for note in inputs.notes]
    if inputs.notes:
        lines.append("")
    for section in (
        _summary,
        _environment,
        _method,
        _results,
        _slo_verdicts,
        _breaking_points,
        _resources,
        _database,
        _findings,
        _reproduce,
    ):
        lines += section(inputs)
    return "\n".join(lines).rstrip() + "\n"


def database_engine(description: str, comparison: Comparison) -> str:
    if "SQLite" in description:
        return "SQLite"
    if "PostgreSQL" in description or any(s.database for s in comparison.scenarios):
        return "PostgreSQL"
    return f"not known to perfci (target {description or 'unknown'})"
