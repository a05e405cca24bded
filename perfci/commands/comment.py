"""`perfci comment`: post or update the PR comment (and a check run) from a run or a downloaded artifact.

Runs beside a write token in its own workflow job, so it imports nothing heavy: no statistics, no Locust.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path

from perfci.commands.common import Subparsers, say
from perfci.errors import ExitCode
from perfci.publish.github import CheckRunPublisher, GitHubCommentPublisher, GitHubSettings
from perfci.publish.publishers import Publication, Publisher, publish_all
from perfci.render.markdown import render_comment
from perfci.rundir import read_comparison

_DIGITS = re.compile(r"[0-9]{1,20}")


def setup_arguments(subparsers: Subparsers) -> None:
    comment = subparsers.add_parser("comment", help="post or update the PR comment from a run or artifact")
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
    comment.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
    from perfci.publish.artifact import load_artifact

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
        say(f"perfci: {outcome.publisher}: {outcome.action} {outcome.url or ''} {outcome.detail}".rstrip())
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
