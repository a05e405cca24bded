"""The `perfci` command: argv -> frozen config -> pipeline; the only place that prints errors and picks exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perfci import failures, rundir
from perfci.config import Config, find_project_root, load_config, parse_duration
from perfci.errors import ExitCode, PerfCIError
from perfci.redact import redact_text

Command = Callable[[argparse.Namespace], int]


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


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
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
    group.add_argument("--database-url", help="process target: PostgreSQL URL instead of SQLite")
    group.add_argument("--seed-users", type=int, help="users created before load")
    group.add_argument("--runs-dir", help="where run directories go")
    group.add_argument("--baselines-dir", help="where baselines are read and written")


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    config_file = args.config or find_project_root(Path.cwd()) / "pyproject.toml"
    overrides: dict[str, Any] = {
        "profile": args.profile,
        "target": args.target,
        "scenarios": args.scenarios,
        "workers": args.workers,
        "runs_dir": args.runs_dir,
        "baselines_dir": args.baselines_dir,
        "service.url": args.url,
        "service.database_url": args.database_url,
        "service.seed_users": args.seed_users,
        "profile.duration_s": args.duration,
        "profile.warmup_s": args.warmup,
        "profile.trials": args.trials,
        "profile.ab_schedule": args.ab_schedule,
        "profile.users": args.users,
        "profile.arrival_rate": args.arrival_rate,
    }
    if args.url and not args.target:
        overrides["target"] = "url"
    return load_config(config_file, environ=environ, overrides=overrides)


# --------------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci import pipeline
    from perfci.commands import finish_run

    ab_ref, base_label = args.ab, None
    if not ab_ref and not args.against_baseline:
        # The default is what the PR check runs: an A/B on this machine against the merge-base with main.
        from perfci.gitrefs import default_base

        ab_ref, why = default_base(config.project_root)
        base_label = f"merge-base@{ab_ref[:7]}" if why.startswith("the merge-base") else f"HEAD@{ab_ref[:7]}"
        print(f"perfci: A/B against {why}", file=sys.stderr)
    options = pipeline.RunOptions(
        label=args.label or (f"ab-{args.ab}" if args.ab else "ab" if ab_ref else config.profile_name),
        ab_ref=ab_ref,
        base_label=base_label,
        base_env=dict(args.base_env or []),
        candidate_env=dict(args.candidate_env or []),
        order_seed=args.order_seed,
        progress=not args.no_progress,
        command=("perfci", *sys.argv[1:]),
    )
    outcome = pipeline.run(config, options, pipeline.stderr_say)
    code = finish_run(outcome.run_dir, outcome.comparison)
    # Checked once the reports are written: what was measured is kept, but the gate must not pass on it.
    unchecked = pipeline.unchecked_slo_error(config, outcome.comparison)
    return _report(unchecked) if unchecked is not None else code


def cmd_baseline(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci import pipeline
    from perfci.commands import refresh_baselines

    options = pipeline.RunOptions(
        label="baseline", progress=not args.no_progress, command=("perfci", "baseline"), replaces_baselines=True
    )
    return refresh_baselines(config, options)


def cmd_summary(args: argparse.Namespace) -> int:
    from perfci.commands import print_summary

    return print_summary(args.run_dir, args.runs_dir or _default_runs_dir())


def cmd_report(args: argparse.Namespace) -> int:
    from perfci.commands import write_reports

    return write_reports(args.run_dir, args.runs_dir or _default_runs_dir())


def _default_runs_dir() -> str:
    """The project's runs folder, from wherever in its checkout perfci is called (e.g. `service/`)."""
    try:
        return str(load_config(find_project_root(Path.cwd()) / "pyproject.toml").runs_dir)
    except PerfCIError:
        return ".perfci/runs"  # no usable configuration: the conventional place, relative to here


def cmd_merge(args: argparse.Namespace) -> int:
    from perfci.commands import finish_run
    from perfci.merge import merge_shards

    comparison = merge_shards(args.shards, args.output, ("perfci", *sys.argv[1:]), args.expect or ())
    return finish_run(args.output, comparison)


def cmd_comment(args: argparse.Namespace) -> int:
    from perfci.commands import post_comment

    return post_comment(
        source=args.source,
        repository=args.repo,
        pr_number=args.pr,
        head_sha=args.sha,
        mode=args.mode,
        api_url=args.api_url,
        check=args.check,
        trusted_run_dir=args.run_dir,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfci", description="Performance-regression checks: boot, load, compare, report."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the PR check: an A/B of the working tree against the merge-base with main")
    _add_config_flags(run)
    against = run.add_mutually_exclusive_group()
    against.add_argument(
        "--ab", metavar="REF", help="same-machine A/B against this git ref (default: the merge-base with main)"
    )
    against.add_argument(
        "--against-baseline",
        action="store_true",
        help="one arm only, compared with this testbed's stored baseline (another testbed's: shown, not judged)",
    )
    run.add_argument("--base-env", action="append", type=_env_pair, metavar="K=V", help="base arm only")
    run.add_argument("--candidate-env", action="append", type=_env_pair, metavar="K=V", help="candidate only")
    run.add_argument("--order-seed", type=int, help="seed of the random arm order (default: random)")
    run.add_argument("--label", help="run directory label")
    run.add_argument("--no-progress", action="store_true", help="plain log lines instead of a live display")
    run.set_defaults(handler=cmd_run)

    base = sub.add_parser("baseline", help="measure this commit and refresh baselines/")
    _add_config_flags(base)
    base.add_argument("--no-progress", action="store_true")
    base.set_defaults(handler=cmd_baseline)

    for name, handler, text in (
        ("summary", cmd_summary, "print a run's summary table"),
        ("report", cmd_report, "write report.md and report.html of a run"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("run_dir", nargs="?", type=Path, help="a run directory (default: the latest)")
        command.add_argument("--runs-dir", help="where to look for the latest run")
        command.set_defaults(handler=handler)

    merge = sub.add_parser("merge", help="judge shard runs (one scenario each) together as one PR")
    merge.add_argument("shards", nargs="*", type=Path, metavar="DIR", help="each shard's run directory")
    merge.add_argument(
        "--expect",
        action="append",
        metavar="SCENARIO",
        help="a scenario the check planned (repeatable): one that no shard brought is a failure, not a pass",
    )
    merge.add_argument("--output", type=Path, required=True, metavar="OUT", help="the merged run directory")
    merge.set_defaults(handler=cmd_merge)

    comment = sub.add_parser("comment", help="post or update the PR comment from a run or artifact")
    comment.add_argument("source", type=Path, help="artifact folder, zip or comparison.json (--run-dir: a run)")
    comment.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY"), help="OWNER/NAME")
    target = comment.add_mutually_exclusive_group()
    target.add_argument("--pr", type=int, help="pull request number")
    target.add_argument("--sha", help="head commit; the PR is found from it (fork PRs)")
    comment.add_argument("--mode", choices=["always", "on-change", "never"], default="always")
    comment.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    comment.add_argument("--check", action="store_true", help="also create a check run with the verdict")
    comment.add_argument(
        "--run-dir", action="store_true", help="SOURCE is a run directory written here (else: validated artifact)"
    )
    comment.set_defaults(handler=cmd_comment)

    for name in ("stress", "trends", "calibrate", "report-doc"):
        extra = sub.add_parser(name, help=f"see `perfci {name} --help`")
        _add_config_flags(extra)
        extra.add_argument("--no-progress", action="store_true")
        extra.add_argument("--runs", type=int, default=10, help="calibrate: comparisons per case")
        extra.add_argument("--case", action="append", dest="cases", help="calibrate: only this case (repeatable)")
        extra.add_argument("--testbed", help="trends, calibrate --from-pool: only this testbed (its id)")
        extra.add_argument("--grow-pool", action="store_true", help="calibrate: add one A/A run to calibration/pool")
        extra.add_argument("--from-pool", action="store_true", help="calibrate: estimate rates from the A/A pool")
        extra.add_argument("--note", help="calibrate --grow-pool: what else the machine was doing")
        extra.add_argument(
            "--model", choices=["closed", "open"], default="closed", help="stress: raise users or arrival rate"
        )
        extra.set_defaults(handler=_extra_command(name))
    return parser


def _extra_command(name: str) -> Command:
    def handler(args: argparse.Namespace) -> int:
        from perfci import commands

        config = build_config(args)
        function: Callable[..., int] = getattr(commands, name.replace("-", "_"))
        return function(config, args)

    return handler


def _terminated(signum: int, frame: object) -> None:
    # A cancelled CI job or `kill` ends the run the way Ctrl-C does: the services and Locust it started
    # are stopped on the way out, and what was measured stays on disk.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        return _dispatch(args)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; the one place where every failure becomes a message and an exit code.

    Nothing escapes as a traceback with exit 1, which CI would read as "this change regressed".
    """
    rundir.forget_run_dirs()
    try:
        return int(args.handler(args))
    except PerfCIError as error:
        return _report(error)
    except KeyboardInterrupt:
        print("error: interrupted; partial results stay in the run directory", file=sys.stderr)
        return int(ExitCode.INFRASTRUCTURE)
    except OSError as error:
        known = failures.from_os_error(error)
        if known is not None:
            return _report(known)
        return _crashed(error)
    except Exception as error:  # noqa: BLE001 (the guard of last resort: a crash is exit 3 with its log)
        return _crashed(error)


def _report(error: PerfCIError) -> int:
    error.message, error.hint = redact_text(error.message), redact_text(error.hint)
    print(f"error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    marker = failures.write_error_marker(error)
    if marker is not None:
        print(f"perfci: the error is kept in {marker}", file=sys.stderr)
    return int(error.exit_code)


def _crashed(error: BaseException) -> int:
    log = failures.write_crash_log(error)
    print(f"error: perfci failed unexpectedly: {type(error).__name__}: {redact_text(str(error))}", file=sys.stderr)
    print(f"hint: the traceback is in {log}; please report it to perfci's maintainers with that file", file=sys.stderr)
    return int(ExitCode.INFRASTRUCTURE)


if __name__ == "__main__":
    raise SystemExit(main())
