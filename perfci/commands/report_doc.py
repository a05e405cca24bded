"""`perfci report-doc`: measure and stress the service, then write docs/performance_test_report.md.

The suite runs (`pipeline.run`) and the configured stress scenarios are stressed into one run directory;
`gather_inputs` reads what the report states from it and `render.performance_report` writes the Markdown.
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from perfci.commands.common import (
    Subparsers,
    add_config_flags,
    build_config,
    say,
    stress_service,
    write_report_files,
)
from perfci.config import Config
from perfci.errors import ExitCode
from perfci.model import Comparison, Say
from perfci.rundir import STRESS_HTML, atomic_write, read_run_info

if TYPE_CHECKING:  # the statistics and charts are imported when the command runs, not when perfci starts
    from perfci.measure.stress import StressRun
    from perfci.render.performance_report import Machine, ReportInputs

REPORT_PATH = Path("docs/performance_test_report.md")


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("report-doc", help="measure, stress and write docs/performance_test_report.md")
    add_config_flags(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = write_performance_report(build_config(args), say)
    print(path)
    return int(ExitCode.OK)


def write_performance_report(
    config: Config, say: Say, *, output: Path | None = None, argv: Sequence[str] | None = None
) -> Path:
    """Measure and stress the service, then write the report (docs/performance_test_report.md by default)."""
    from perfci import pipeline
    from perfci.render.html import render_stress_html
    from perfci.render.performance_report import Machine, render_performance_report

    arguments = tuple(sys.argv if argv is None else argv)
    command = reproduce_command(arguments, config)
    before = _load_average()
    options = pipeline.RunOptions(label="report", command=arguments)
    outcome = pipeline.run(config, options, say)
    names = stressed_scenarios(config)
    stress: list[StressRun] = []
    if names:
        say(f"perfci: stressing {', '.join(names)}")
        stress = stress_service(config, outcome.run_dir, workdir="stress", scenarios=names, say=say)
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


def reproduce_command(argv: Sequence[str], config: Config) -> str:
    """`perfci report-doc <the CLI's arguments>`; from Python, the profile and scenarios that were used."""
    if len(argv) >= 2 and argv[1] == "report-doc":
        args = list(argv[2:])
    else:
        args = ["--profile", config.profile_name, *(a for s in config.scenarios for a in ("--scenario", s))]
    return shlex.join(["perfci", "report-doc", *args])


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
    from perfci.analysis.evidence import findings_for_run
    from perfci.collect import with_run_measurements
    from perfci.render.performance_report import ReportInputs, database_engine

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
        findings=findings_for_run(run_dir, measured, config),
    )


def stressed_scenarios(config: Config) -> list[str]:
    """The configured stress scenarios that this run also measures (`--scenario` narrows both)."""
    return [s for s in config.stress.scenarios or config.scenarios if s in config.scenarios]
