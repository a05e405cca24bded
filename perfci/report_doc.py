"""docs/performance_test_report.md: a real measurement and stress of the reference service, written up.

`write_performance_report` runs the configured suite (`pipeline.run`) and a stress of the configured
stress scenarios into one run directory, gathers the findings, and writes the Markdown that
`render_performance_report` makes from a `ReportInputs` record; the renderer is pure so that tests feed it
fixtures. Everything the report states comes from the run directory it names, which keeps the raw data.
"""

from __future__ import annotations

import ast
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from perfci.config import Config, Profile
from perfci.findings import findings_for_run, with_run_measurements
from perfci.model import Comparison, DatabaseCounters, EndpointComparison, Environment, ResourcePeak, SloSpec
from perfci.recommend import Finding
from perfci.render import format as fmt
from perfci.render.escape import code_text, markdown_text
from perfci.render.markdown import absolute_cells
from perfci.rundir import STRESS_HTML, TARGETS_DIR, atomic_write, read_run_info
from perfci.stress import StressRun

Say = Callable[[str], None]

REPORT_PATH = Path("docs/performance_test_report.md")
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


# ----------------------------------------------------------------------------------------------------------
# Rendering: pure, inputs in, Markdown out.
# ----------------------------------------------------------------------------------------------------------


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
        "Figures from another machine will differ: compare runs on the same machine, as `nox -s perf -- --ab main` "
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


# ----------------------------------------------------------------------------------------------------------
# I/O: measure, stress, gather, write.
# ----------------------------------------------------------------------------------------------------------


def scenario_description(path: Path) -> str:
    """The first line of a locustfile's module docstring."""
    if not path.is_file():
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return doc.strip().splitlines()[0] if doc else ""


def memory_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return None


def _load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def database_engine(description: str, comparison: Comparison) -> str:
    if "SQLite" in description:
        return "SQLite"
    if "PostgreSQL" in description or any(s.database for s in comparison.scenarios):
        return "PostgreSQL"
    return f"not known to perfci (target {description or 'unknown'})"


def reproduce_command(argv: Sequence[str], config: Config) -> str:
    """`nox -s report -- <the CLI's arguments>`; from Python, the profile and scenarios that were used."""
    if len(argv) >= 2 and argv[1] == "report-doc":
        args = list(argv[2:])
    else:
        args = ["--profile", config.profile_name, *(a for s in config.scenarios for a in ("--scenario", s))]
    return shlex.join(["nox", "-s", "report", *(["--", *args] if args else [])])


def gather_inputs(
    config: Config,
    run_dir: Path,
    comparison: Comparison,
    stress: Sequence[StressRun],
    *,
    command: str,
    machine: Machine,
    stress_budget_s: float | None = None,
) -> ReportInputs:
    """The report's inputs from a finished run directory."""
    info = read_run_info(run_dir)
    measured = with_run_measurements(run_dir, comparison)
    try:
        shown_dir = str(run_dir.relative_to(config.project_root))
    except ValueError:
        shown_dir = str(run_dir)
    return ReportInputs(
        generated_at=datetime.now(UTC),
        command=command,
        run_dir=shown_dir,
        commit=info.candidate_commit,
        dirty=info.candidate_dirty,
        environment=info.environment,
        machine=machine,
        target_description=info.target_description,
        database_engine=database_engine(info.target_description, measured),
        profile_name=config.profile_name,
        profile=config.profile,
        scenarios=list(config.scenarios),
        scenario_descriptions={s: scenario_description(config.scenario_file(s)) for s in config.scenarios},
        slos=list(config.slos),
        service_env=dict(config.service.env),
        comparison=measured,
        stress=list(stress),
        stress_budget_s=stress_budget_s,
        findings=findings_for_run(run_dir, comparison, config),
    )


def stressed_scenarios(config: Config) -> list[str]:
    """The configured stress scenarios that this run also measures (`--scenario` narrows both)."""
    return [s for s in config.stress.scenarios if s in config.scenarios]


def write_performance_report(
    config: Config, say: Say, *, output: Path | None = None, argv: Sequence[str] | None = None
) -> Path:
    """Measure and stress the service, then write the report (docs/performance_test_report.md by default)."""
    from perfci import pipeline
    from perfci.commands import write_report_files
    from perfci.report import render_stress_html
    from perfci.stress import run_stress
    from perfci.targets.select import BootRequest, boot_target

    arguments = tuple(sys.argv if argv is None else argv)
    command = reproduce_command(arguments, config)
    before = _load_average()
    options = pipeline.RunOptions(label="report", command=arguments)
    outcome = pipeline.run(config, options, say)
    names = stressed_scenarios(config)
    stress: list[StressRun] = []
    if names:
        request = BootRequest(
            arm="candidate", checkout=config.project_root, workdir=outcome.run_dir / TARGETS_DIR / "stress"
        )
        with boot_target(config, request) as target:
            say(f"perfci: stressing {', '.join(names)} on {target.base_url}")
            stress = run_stress(config, target, outcome.run_dir, scenarios=names, say=say)
        atomic_write(outcome.run_dir / STRESS_HTML, render_stress_html(stress))
    # After the stress, so that report.html's findings include what the stress found.
    write_report_files(outcome.run_dir, outcome.comparison)
    machine = Machine(
        memory_gb=memory_gb(),
        load_average_before=before,
        load_average_after=_load_average(),
        service_workers=config.service.workers,
        locust_workers=config.workers,
    )
    inputs = gather_inputs(
        config,
        outcome.run_dir,
        outcome.comparison,
        stress,
        command=command,
        machine=machine,
        stress_budget_s=config.stress.max_duration_s if names else None,
    )
    path = output or config.project_root / REPORT_PATH
    atomic_write(path, render_performance_report(inputs))
    say(f"perfci: performance report written to {path} (raw data in {outcome.run_dir})")
    return path
