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

from perfci.config import Config, find_project_root, load_config, parse_duration
from perfci.errors import ExitCode, PerfCIError

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

    options = pipeline.RunOptions(
        label=args.label or (f"ab-{args.ab}" if args.ab else config.profile_name),
        ab_ref=args.ab,
        base_env=dict(args.base_env or []),
        candidate_env=dict(args.candidate_env or []),
        order_seed=args.order_seed,
        progress=not args.no_progress,
        command=("perfci", *sys.argv[1:]),
    )
    outcome = pipeline.run(config, options, pipeline.stderr_say)
    return finish_run(outcome.run_dir, outcome.comparison)


def cmd_baseline(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci import pipeline
    from perfci.commands import refresh_baselines

    options = pipeline.RunOptions(label="baseline", progress=not args.no_progress, command=("perfci", "baseline"))
    return refresh_baselines(config, options)


def cmd_summary(args: argparse.Namespace) -> int:
    from perfci.commands import print_summary

    return print_summary(args.run_dir, args.runs_dir or ".perfci/runs")


def cmd_report(args: argparse.Namespace) -> int:
    from perfci.commands import write_reports

    return write_reports(args.run_dir, args.runs_dir or ".perfci/runs")


def cmd_merge(args: argparse.Namespace) -> int:
    from perfci.commands import finish_run
    from perfci.merge import merge_shards

    comparison = merge_shards(args.shards, args.output, ("perfci", *sys.argv[1:]))
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
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfci", description="Performance-regression checks: boot, load, compare, report."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the suite and compare with main (the PR check)")
    _add_config_flags(run)
    run.add_argument("--ab", metavar="REF", help="same-machine A/B against this git ref (e.g. main)")
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
    merge.add_argument("shards", nargs="+", type=Path, metavar="DIR", help="each shard's run directory")
    merge.add_argument("--output", type=Path, required=True, metavar="OUT", help="the merged run directory")
    merge.set_defaults(handler=cmd_merge)

    comment = sub.add_parser("comment", help="post or update the PR comment from a run or artifact")
    comment.add_argument("source", type=Path, help="run directory, artifact folder or comparison.json")
    comment.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY"), help="OWNER/NAME")
    target = comment.add_mutually_exclusive_group()
    target.add_argument("--pr", type=int, help="pull request number")
    target.add_argument("--sha", help="head commit; the PR is found from it (fork PRs)")
    comment.add_argument("--mode", choices=["always", "on-change", "never"], default="always")
    comment.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    comment.add_argument("--check", action="store_true", help="also create a check run with the verdict")
    comment.set_defaults(handler=cmd_comment)

    for name in ("stress", "trends", "calibrate", "report-doc"):
        extra = sub.add_parser(name, help=f"see `perfci {name} --help`")
        _add_config_flags(extra)
        extra.add_argument("--no-progress", action="store_true")
        extra.add_argument("--runs", type=int, default=10, help="calibrate: comparisons per case")
        extra.add_argument("--case", action="append", dest="cases", help="calibrate: only this case (repeatable)")
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
    try:
        return int(args.handler(args))
    except PerfCIError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted; partial results stay in the run directory", file=sys.stderr)
        return int(ExitCode.INFRASTRUCTURE)


if __name__ == "__main__":
    raise SystemExit(main())
