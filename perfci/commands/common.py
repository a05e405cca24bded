"""What several subcommands share: the configuration flags, the reports of a run, the end of a run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from perfci import verdict
from perfci.config import Config, find_project_root, load_config, parse_duration
from perfci.errors import DataError, PerfCIError
from perfci.model import Comparison, Environment, Say
from perfci.publish.publishers import (
    FilePublisher,
    JobSummaryPublisher,
    Publication,
)
from perfci.render.markdown import render_comment, render_job_summary
from perfci.rundir import (
    REPORT_HTML,
    REPORT_MD,
    atomic_write,
    latest_run,
    read_run_record,
)

# The object `add_subparsers` returns (a string: argparse's class is not subscriptable at run time).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

if TYPE_CHECKING:
    from perfci.analysis.breaking_point import LoadModel
    from perfci.analysis.trends import TrendReport
    from perfci.measure.stress import StressRun


def say(message: str) -> None:
    """A progress or status line: on stderr, so that stdout stays the command's output."""
    print(message, file=sys.stderr, flush=True)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_env_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-env", action="append", type=_env_pair, metavar="K=V", help="base arm only")
    parser.add_argument("--candidate-env", action="append", type=_env_pair, metavar="K=V", help="candidate only")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (overrides [tool.perfci])")
    group.add_argument("--config", type=Path, help="pyproject.toml with [tool.perfci] (default: nearest)")
    group.add_argument("--profile", help="named profile, e.g. pr or full")
    group.add_argument("--target", choices=["auto", "compose", "process", "url"])
    group.add_argument("--scenario", action="append", dest="scenarios", metavar="NAME", help="repeatable")
    group.add_argument("--duration", type=_duration, help="measured window per trial, e.g. 20s")
    group.add_argument("--warmup", type=_duration, help="warm-up per trial, excluded from measurement")
    group.add_argument("--trials", type=int, help="trials per arm (pairs in an A/B run)")
    group.add_argument(
        "--ab-schedule", choices=["interleaved", "concurrent"], help="A/B: arms one after the other, or at once"
    )
    group.add_argument("--users", type=int, help="concurrent Locust users")
    group.add_argument("--arrival-rate", type=float, help="open-model scenarios: requests per second")
    group.add_argument("--workers", type=int, help="Locust worker processes (0 = one local process)")
    group.add_argument("--url", help="target 'url': the running service's address")
    group.add_argument("--base-url", help="target 'url' A/B: the running base service (with --candidate-url)")
    group.add_argument("--candidate-url", help="target 'url' A/B: the running candidate service")
    group.add_argument("--database-url", help="process target: PostgreSQL URL instead of SQLite")
    group.add_argument("--seed-users", type=int, help="users created before load")
    group.add_argument("--runs-dir", help="where run directories go")
    group.add_argument("--baselines-dir", help="where baselines are read and written")


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """The frozen configuration from pyproject.toml, the environment and the flags of `add_config_flags`."""
    config_file = args.config or find_project_root(Path.cwd()) / "pyproject.toml"
    overrides: dict[str, Any] = {
        "profile": args.profile,
        "target": args.target,
        "default_scenarios": args.scenarios,
        "workers": args.workers,
        "runs_dir": args.runs_dir,
        "baselines_dir": args.baselines_dir,
        "service.url": args.url,
        "service.process.database_url": args.database_url,
        "service.base_url": args.base_url,
        "service.candidate_url": args.candidate_url,
        "service.seed_users": args.seed_users,
        "profile.duration_s": args.duration,
        "profile.warmup_s": args.warmup,
        "profile.trials": args.trials,
        "profile.ab_schedule": args.ab_schedule,
        "profile.users": args.users,
        "profile.arrival_rate": args.arrival_rate,
    }
    if (args.url or args.base_url or args.candidate_url) and not args.target:
        overrides["target"] = "url"
    return load_config(config_file, environ=environ, overrides=overrides)


def add_run_dir_argument(parser: argparse.ArgumentParser) -> None:
    """A run directory to read, by default the latest one of the project."""
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run directory (default: the latest)")
    parser.add_argument("--runs-dir", help="where to look for the latest run")


def chosen_run_dir(args: argparse.Namespace) -> Path:
    return args.run_dir if args.run_dir is not None else latest_run(Path(args.runs_dir or _default_runs_dir()))


def _default_runs_dir() -> str:
    """The project's runs folder, from wherever in its checkout perfci is called (e.g. `service/`)."""
    try:
        return str(load_config(find_project_root(Path.cwd()) / "pyproject.toml").runs_dir)
    except PerfCIError:
        return ".perfci/runs"  # no usable configuration: the conventional place, relative to here


def write_report_files(run_dir: Path, comparison: Comparison) -> list[Path]:
    """report.md (the PR comment's text) and report.html (self-contained, with charts) in the run directory."""
    import pyarrow as pa

    written = [run_dir / REPORT_MD, run_dir / REPORT_HTML]
    FilePublisher(written[0]).publish(Publication(comparison, render_comment(comparison)))
    try:
        html = _run_html(run_dir, comparison)
    except pa.ArrowException as exc:  # a truncated or hand-edited samples/resources file
        raise DataError(
            f"cannot read the trial files of {run_dir}: {exc}",
            f"the run directory is damaged; {written[0]} was written, re-run `perfci run` for the charts",
        ) from None
    atomic_write(written[1], html)
    return written


def _run_html(run_dir: Path, comparison: Comparison) -> str:
    """report.html from what the run directory holds beyond the comparison: charts, findings, trends."""
    from perfci.analysis.evidence import findings_for_run
    from perfci.collect import with_run_measurements
    from perfci.render.charts_data import load_charts_data
    from perfci.render.html import render_run_html

    measured = with_run_measurements(run_dir, comparison)
    return render_run_html(
        measured,
        load_charts_data(run_dir, comparison),
        findings_for_run(run_dir, measured),
        _trend_reports(run_dir, [s.scenario for s in comparison.scenarios]),
    )


def _trend_reports(run_dir: Path, scenarios: Sequence[str]) -> list[TrendReport]:
    """main's trends for the run's scenarios, on the run's own testbed (trends never mix machines)."""
    from perfci.analysis.baselines import HISTORY_DIR, history_path
    from perfci.analysis.trends import load_trends
    from perfci.testbed import testbed_id

    run = read_run_record(run_dir)
    baselines = run.get("config", {}).get("baselines_dir")
    if not baselines or "environment" not in run:
        return []
    home = Path(baselines) / testbed_id(Environment.model_validate(run["environment"]))
    present = [s for s in scenarios if history_path(home, s).is_file()]
    return load_trends(home / HISTORY_DIR, present) if present else []


def finish_run(run_dir: Path, comparison: Comparison) -> int:
    """After a run: reports on disk, the table on the terminal, the job summary in Actions; the exit code."""
    from perfci.render.terminal import render_terminal

    reports = write_report_files(run_dir, comparison)
    print(render_terminal(comparison))
    JobSummaryPublisher.from_environment().publish(Publication(comparison, render_job_summary(comparison)))
    say(f"perfci: reports: {', '.join(str(p) for p in reports)}")
    if comparison.failure is not None:
        say(f"error: {comparison.failure.message}")
        say(f"hint: {comparison.failure.hint}")
    return int(verdict.exit_code(comparison))


def stress_service(
    config: Config,
    run_dir: Path,
    *,
    workdir: str,
    scenarios: Sequence[str] | None = None,
    model: LoadModel = "closed",
    say: Say = say,
) -> list[StressRun]:
    """Boot the candidate into `run_dir` and stress the scenarios (default: the configured ones) in turn."""
    from perfci.measure.stress import run_stress
    from perfci.rundir import TARGETS_DIR
    from perfci.targets.select import BootRequest, boot_target

    request = BootRequest(arm="candidate", checkout=config.project_root, workdir=run_dir / TARGETS_DIR / workdir)
    with boot_target(config, request) as target:
        say(f"perfci: service ready at {target.base_url}: {target.description}")
        return run_stress(config, target, run_dir, model=model, scenarios=scenarios, say=say)


class Command(Protocol):
    """What a module of perfci/commands provides (each module is one)."""

    def setup_arguments(self, subparsers: Subparsers) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...
