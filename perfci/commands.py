"""What each `perfci` subcommand does once the CLI has built its configuration."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from perfci import verdict
from perfci.config import Config
from perfci.errors import DataError, ExitCode
from perfci.model import Comparison
from perfci.publish import (
    CheckRunPublisher,
    FilePublisher,
    GitHubCommentPublisher,
    GitHubSettings,
    JobSummaryPublisher,
    Publication,
    Publisher,
    publish_all,
)
from perfci.render.markdown import render_comment, render_job_summary
from perfci.rundir import (
    REPORT_HTML,
    REPORT_MD,
    RUN_FILE,
    STRESS_HTML,
    STRESS_MD,
    atomic_write,
    latest_run,
    read_comparison,
    read_text_file,
)

if TYPE_CHECKING:
    from perfci.pipeline import RunOptions

_DIGITS = re.compile(r"[0-9]{1,20}")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_dir(run_dir: Path | None, runs_dir: str) -> Path:
    return run_dir if run_dir is not None else latest_run(Path(runs_dir))


def write_report_files(run_dir: Path, comparison: Comparison) -> list[Path]:
    """report.md (the PR comment's text) and report.html (self-contained, with charts) in the run directory."""
    import pyarrow as pa

    from perfci.report import render_run_html

    written = [run_dir / REPORT_MD, run_dir / REPORT_HTML]
    FilePublisher(written[0]).publish(Publication(comparison, render_comment(comparison)))
    try:
        html = render_run_html(run_dir, comparison)
    except pa.ArrowException as exc:  # a truncated or hand-edited samples/resources file
        raise DataError(
            f"cannot read the trial files of {run_dir}: {exc}",
            f"the run directory is damaged; {written[0]} was written, re-run `perfci run` for the charts",
        ) from None
    atomic_write(written[1], html)
    return written


def finish_run(run_dir: Path, comparison: Comparison) -> int:
    """After a run: reports on disk, the table on the terminal, the job summary in Actions; the exit code."""
    from perfci.render.terminal import render_terminal

    reports = write_report_files(run_dir, comparison)
    print(render_terminal(comparison))
    JobSummaryPublisher.from_environment().publish(Publication(comparison, render_job_summary(comparison)))
    _say(f"perfci: reports: {', '.join(str(p) for p in reports)}")
    if comparison.failure is not None:
        _say(f"error: {comparison.failure.message}")
        _say(f"hint: {comparison.failure.hint}")
    return int(verdict.exit_code(comparison))


def refresh_baselines(config: Config, options: RunOptions) -> int:
    """Measure this commit and write baselines/<testbed id>/<scenario>.json plus a history line per scenario."""
    from perfci import pipeline

    outcome = pipeline.run_baseline(config, options, _say)
    for path in outcome.written:
        _say(f"perfci: baseline written: {path}")
    return finish_run(outcome.run_dir, outcome.comparison)


def print_summary(run_dir: Path | None, runs_dir: str) -> int:
    from perfci.render.terminal import render_terminal

    comparison = read_comparison(_run_dir(run_dir, runs_dir))
    print(render_terminal(comparison))
    return int(verdict.exit_code(comparison))


def write_reports(run_dir: Path | None, runs_dir: str) -> int:
    directory = _run_dir(run_dir, runs_dir)
    _check_run_record(directory)
    for path in write_report_files(directory, read_comparison(directory)):
        print(path)
    return int(ExitCode.OK)


def _check_run_record(run_dir: Path) -> None:
    """A run.json that is not a JSON object is named here, not met halfway through the charts."""
    path = run_dir / RUN_FILE
    damaged = "the run directory is damaged; re-run `perfci run` for a new one"
    try:
        record = json.loads(read_text_file(path, "run record", damaged))
    except FileNotFoundError:
        return
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise DataError(f"{path} is not a valid run record (truncated or hand-edited)", damaged)


def post_comment(
    *,
    source: Path,
    repository: str | None,
    pr_number: int | None,
    head_sha: str | None,
    mode: str,
    api_url: str,
    check: bool,
    trusted_run_dir: bool = False,
) -> int:
    """Post or update the sticky comment from a downloaded artifact (validated) or, when `trusted_run_dir`
    says so, from a run directory this machine wrote."""
    from perfci.artifact import load_artifact

    # Only the caller knows where `source` came from: a folder's contents (a run.json, say) must not decide
    # whether it is trusted, since a PR's artifact can hold anything. Untrusted is the default.
    comparison = read_comparison(source) if trusted_run_dir else load_artifact(source).comparison
    # Links are ours to set: an artifact's own URLs are untrusted data.
    run_url, report_url = actions_links(os.environ)
    comparison = comparison.model_copy(update={"run_url": run_url, "report_url": report_url})
    settings = GitHubSettings.from_environment(repository=repository, pr_number=pr_number, head_sha=head_sha)
    if api_url:
        settings = GitHubSettings(**{**settings.__dict__, "api_url": api_url.rstrip("/")})
    publishers: list[Publisher] = [GitHubCommentPublisher(settings, mode=mode)]  # type: ignore[arg-type]
    if check:
        publishers.append(CheckRunPublisher(settings))
    for outcome in publish_all(publishers, Publication(comparison, render_comment(comparison))):
        _say(f"perfci: {outcome.publisher}: {outcome.action} {outcome.url or ''} {outcome.detail}".rstrip())
    return int(ExitCode.OK)


def actions_links(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The measuring run's page and its report artifact, or (None, None) outside GitHub Actions.

    In the workflow_run job GITHUB_RUN_ID is the comment job's own run; PERFCI_REPORT_RUN_ID names the run
    that measured, and PERFCI_REPORT_ARTIFACT_ID its report artifact (without it the link goes to the run
    page's artifact list).
    """
    server, repo = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    run_id = environ.get("PERFCI_REPORT_RUN_ID") or environ.get("GITHUB_RUN_ID")
    if not (server and repo and run_id and _DIGITS.fullmatch(run_id)):
        return None, None
    run_url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    artifact_id = environ.get("PERFCI_REPORT_ARTIFACT_ID", "")
    report_url = f"{run_url}/artifacts/{artifact_id}" if _DIGITS.fullmatch(artifact_id) else f"{run_url}#artifacts"
    return run_url, report_url


def stress(config: Config, args: argparse.Namespace) -> int:
    """Boot the candidate, stress each configured scenario to its breaking point, write stress.md/.html."""
    from perfci.render.stress import stress_markdown
    from perfci.report import render_stress_html
    from perfci.rundir import TARGETS_DIR, new_run_dir
    from perfci.stress import run_stress
    from perfci.targets.select import BootRequest, boot_target

    run_dir = new_run_dir(config.runs_dir, "stress")
    _say(f"perfci: run directory {run_dir}")
    request = BootRequest(arm="candidate", checkout=config.project_root, workdir=run_dir / TARGETS_DIR / "candidate")
    with boot_target(config, request) as target:
        _say(f"perfci: service ready at {target.base_url}: {target.description}")
        runs = run_stress(config, target, run_dir, model=args.model, say=_say)
    markdown = stress_markdown(runs)
    atomic_write(run_dir / STRESS_MD, markdown)
    atomic_write(run_dir / STRESS_HTML, render_stress_html(runs))
    print(markdown)
    _say(f"perfci: reports: {run_dir / STRESS_MD}, {run_dir / STRESS_HTML}")
    return int(ExitCode.OK)


def trends(config: Config, args: argparse.Namespace) -> int:
    from perfci.baselines import HISTORY_DIR  # imports the statistics (numpy): not for `perfci comment`
    from perfci.errors import DataError
    from perfci.render.trends import trends_text
    from perfci.trends import load_trends

    # One testbed at a time: a series that mixes machines shows the machines' difference as a change point.
    homes = sorted(p.parent for p in config.baselines_dir.glob(f"*/{HISTORY_DIR}") if p.is_dir())
    if (config.baselines_dir / HISTORY_DIR).is_dir():
        homes.append(config.baselines_dir)  # the flat layout of earlier versions: one more testbed
    if args.testbed:
        homes = [h for h in homes if h.name == args.testbed]
        if not homes:
            raise DataError(
                f"no history for testbed {args.testbed} in {config.baselines_dir}",
                f"pick one of the folders in {config.baselines_dir} (each is a testbed id)",
            )
    if not homes:
        raise DataError(f"no history in {config.baselines_dir}", "run `nox -s baseline` on main to start one")
    for home in homes:
        name = home.name if home != config.baselines_dir else f"{home.name} (flat layout)"
        print(f"testbed {name}")
        print(trends_text(load_trends(home / HISTORY_DIR)))
    return int(ExitCode.OK)


def calibrate(config: Config, args: argparse.Namespace) -> int:
    from perfci.calibrate import estimate_from_pool, grow_pool, run_calibration

    if args.grow_pool:
        return grow_pool(config, say=_say, note=args.note or "", progress=not args.no_progress)
    if args.from_pool:
        return estimate_from_pool(config, testbed=args.testbed, say=_say)
    return run_calibration(config, runs=args.runs, say=_say, case_names=args.cases, progress=not args.no_progress)


def report_doc(config: Config, args: argparse.Namespace) -> int:
    from perfci.report_doc import write_performance_report

    path = write_performance_report(config, _say)
    print(path)
    return int(ExitCode.OK)
