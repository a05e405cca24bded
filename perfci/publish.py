"""Publishers: the sticky PR comment, a check run or commit status, the job summary and plain files.

Each takes a rendered `Publication` and reports what it did. Results are on disk before any publisher runs,
so a failed publish (a `PublishError`, exit 3) never loses them.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from perfci.errors import ConfigError, PublishError
from perfci.model import Comparison
from perfci.render.markdown import MARKER, fingerprint
from perfci.results import atomic_write

CommentMode = Literal["always", "on-change", "never"]
COMMENT_MODES: tuple[CommentMode, ...] = ("always", "on-change", "never")
Action = Literal["created", "updated", "unchanged", "skipped", "written"]
# The login GitHub Actions' GITHUB_TOKEN writes as; that token may not read GET /user to learn it.
ACTIONS_BOT_LOGIN = "github-actions[bot]"
DEFAULT_API_URL = "https://api.github.com"
CHECK_NAME = "perfci"
# Check run summaries and commit status descriptions have their own limits.
CHECK_SUMMARY_LIMIT = 65_535
STATUS_DESCRIPTION_LIMIT = 140
_FINGERPRINT = re.compile(r"<!-- perfci:fingerprint ([0-9a-f]+) -->")


@dataclass(frozen=True)
class Publication:
    """What every publisher receives: the comparison and its rendered Markdown (the comment body)."""

    comparison: Comparison
    markdown: str


@dataclass(frozen=True)
class PublishOutcome:
    publisher: str
    action: Action
    url: str | None = None
    detail: str = ""


class Publisher(ABC):
    """One place results go. `publish` raises `PublishError` with a hint, never anything else."""

    name: str = "publisher"

    @abstractmethod
    def publish(self, publication: Publication) -> PublishOutcome: ...


# ----------------------------------------------------------------------------------------------------------
# Files and the job summary
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePublisher(Publisher):
    """Writes the Markdown to a file (atomically), e.g. `report.md` in the run directory."""

    path: Path
    name: str = "file"

    def publish(self, publication: Publication) -> PublishOutcome:
        try:
            atomic_write(self.path, publication.markdown)
        except OSError as error:
            raise PublishError(
                f"cannot write {self.path}: {error.strerror or error}", "check the directory exists and is writable"
            ) from error
        return PublishOutcome(self.name, "written", str(self.path))


@dataclass(frozen=True)
class JobSummaryPublisher(Publisher):
    """Appends to `$GITHUB_STEP_SUMMARY` (other steps may have written there too); skipped outside Actions."""

    summary_path: Path | None
    name: str = "job-summary"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> JobSummaryPublisher:
        path = environ.get("GITHUB_STEP_SUMMARY")
        return cls(Path(path) if path else None)

    def publish(self, publication: Publication) -> PublishOutcome:
        if self.summary_path is None:
            return PublishOutcome(self.name, "skipped", detail="GITHUB_STEP_SUMMARY is not set")
        try:
            with self.summary_path.open("a", encoding="utf-8") as summary:
                summary.write(publication.markdown.rstrip("\n") + "\n")
        except OSError as error:
            raise PublishError(
                f"cannot append to the job summary {self.summary_path}: {error.strerror or error}",
                "GITHUB_STEP_SUMMARY must name a writable file (GitHub Actions sets it per step)",
            ) from error
        return PublishOutcome(self.name, "written", str(self.summary_path))


# ----------------------------------------------------------------------------------------------------------
# GitHub
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubSettings:
    """Where and how to talk to GitHub. Build with `from_environment` in Actions; tests build it directly."""

    repository: str  # "owner/name"
    token: str
    api_url: str = DEFAULT_API_URL
    pr_number: int | None = None
    head_sha: str | None = None  # finds the PR when no number is given (fork PRs via workflow_run)
    # Whose comments are perfci's when GET /user is refused (GITHUB_TOKEN is an app token that cannot read it).
    comment_author: str = ACTIONS_BOT_LOGIN
    retries: int = 5
    backoff_s: float = 1.0  # urllib3 backoff factor: 1, 2, 4, 8 ... seconds between retries
    secondary_rate_wait_s: float = 60.0
    timeout_s: int = 30

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.repository):
            raise ConfigError(
                f"repository {self.repository!r} is not owner/name", "pass --repo owner/name or set GITHUB_REPOSITORY"
            )
        if self.head_sha is not None and not re.fullmatch(r"[0-9a-f]{7,40}", self.head_sha):
            raise ConfigError(f"head SHA {self.head_sha!r} is not a hex commit id", "pass the full 40-character SHA")

    @classmethod
    def from_environment(
        cls,
        *,
        repository: str | None = None,
        pr_number: int | None = None,
        head_sha: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> GitHubSettings:
        token = environ.get("GITHUB_TOKEN", "")
        if not token:
            raise PublishError(
                "GITHUB_TOKEN is not set",
                "pass the token to the step: env: { GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} }",
            )
        repo = repository or environ.get("GITHUB_REPOSITORY", "")
        if not repo:
            raise ConfigError("no repository given", "pass --repo owner/name or set GITHUB_REPOSITORY")
        return cls(
            repository=repo,
            token=token,
            api_url=environ.get("GITHUB_API_URL", DEFAULT_API_URL).rstrip("/"),
            pr_number=pr_number,
            head_sha=head_sha,
            comment_author=environ.get("PERFCI_COMMENT_AUTHOR", ACTIONS_BOT_LOGIN),
        )


# What each failing call needs, named the way a workflow's `permissions:` block spells it.
_PERMISSION = {
    "comment": "pull-requests: write",
    "find-pr": "pull-requests: read",
    "check": "checks: write",
    "status": "statuses: write",
}


def _publish_error(error: Exception, settings: GitHubSettings, what: str, call: str) -> PublishError:
    """Turn a PyGithub or transport failure into a one-line error with the permission it lacked."""
    from github import GithubException

    permission = _PERMISSION[call]
    if isinstance(error, GithubException):
        status = error.status
        message = error.data.get("message", "") if isinstance(error.data, dict) else str(error.data)
        where = f"{what} on {settings.repository} ({settings.api_url})"
        if status == 401:
            return PublishError(
                f"GitHub rejected the token (401) while trying to {where}",
                "GITHUB_TOKEN is missing, expired or for another host; pass secrets.GITHUB_TOKEN to the step",
            )
        if status == 403:
            return PublishError(
                f"GitHub refused to {where} (403: {message})",
                f"grant the job `permissions: {permission}`; fork PRs get a read-only token, so comment from "
                "the workflow_run job (perf-comment.yml)",
            )
        if status == 404:
            return PublishError(
                f"GitHub answered 404 to {where}: not found or not visible to this token",
                f"check the repository and PR number, and grant the job `permissions: {permission}` "
                "(GitHub hides what a token may not write as 404)",
            )
        return PublishError(
            f"GitHub answered {status} to {what}: {message}",
            "retry the job; if it persists, check https://www.githubstatus.com",
        )
    return PublishError(
        f"cannot reach GitHub at {settings.api_url} to {what} after {settings.retries} retries: {error}",
        "check GITHUB_API_URL and the network; the results stay on disk, rerun `perfci comment` later",
    )


@contextmanager
def _github_call(settings: GitHubSettings, what: str, call: str) -> Iterator[None]:
    from github import GithubException

    try:
        yield
    except (GithubException, OSError) as error:  # requests' errors are OSErrors
        raise _publish_error(error, settings, what, call) from error


def _client(settings: GitHubSettings) -> Any:
    from github import Auth, Github, GithubRetry

    # GithubRetry backs off on 5xx and on 403s that are rate limits; PATCH is added so updates retry too.
    retry = GithubRetry(
        total=settings.retries,
        backoff_factor=settings.backoff_s,
        secondary_rate_wait=settings.secondary_rate_wait_s,
        allowed_methods=frozenset({"GET", "POST", "PATCH", "HEAD"}),
    )
    return Github(
        auth=Auth.Token(settings.token),
        base_url=settings.api_url,
        retry=retry,
        timeout=settings.timeout_s,
        per_page=100,
        lazy=True,  # build URLs without a GET per object; each call below is one request
    )


def find_pull_request(repo: Any, settings: GitHubSettings) -> int:
    """The PR number: given, or the open PR whose head is `head_sha`.

    `workflow_run` events list no pull requests for forks, so the SHA is the link: first
    GET /commits/{sha}/pulls, then, since that can miss a fork's head commit, the open PRs' heads.
    """
    if settings.pr_number is not None:
        return settings.pr_number
    sha = settings.head_sha
    if sha is None:
        raise ConfigError("neither a PR number nor a head SHA was given", "pass --pr N or --sha <head sha>")
    with _github_call(settings, f"find the pull request of commit {sha[:12]}", "find-pr"):
        for pull in repo.get_commit(sha).get_pulls():
            if pull.state == "open" and pull.head.sha.startswith(sha):
                return int(pull.number)
        for pull in repo.get_pulls(state="open"):
            if pull.head.sha.startswith(sha):
                return int(pull.number)
    raise PublishError(
        f"no open pull request has head commit {sha[:12]} in {settings.repository}",
        "the PR may be closed or force-pushed since the run; nothing to comment on",
    )


def _own_login(gh: Any, settings: GitHubSettings) -> str:
    """The token's own login, or the configured bot login when the token may not read GET /user."""
    from github import GithubException

    try:
        return str(gh.get_user().login)
    except GithubException as error:
        if error.status in (401,):
            raise _publish_error(error, settings, "identify the token's user", "comment") from error
        return settings.comment_author
    except OSError as error:
        raise _publish_error(error, settings, "identify the token's user", "comment") from error


def _is_ours(comment: Any, login: str, marker: str) -> bool:
    return comment.user is not None and comment.user.login == login and marker in (comment.body or "")


def _fingerprint_of(body: str) -> str | None:
    match = _FINGERPRINT.search(body)
    return match.group(1) if match else None


@dataclass(frozen=True)
class GitHubCommentPublisher(Publisher):
    """Creates or updates the one PR comment that carries perfci's marker.

    Only comments written by the token's own user (or bot) count as perfci's: anyone can paste the marker
    into a comment, and perfci must never edit someone else's words.
    """

    settings: GitHubSettings
    mode: CommentMode = "always"
    marker: str = MARKER
    name: str = "github-comment"

    def publish(self, publication: Publication) -> PublishOutcome:
        if self.mode == "never":
            return PublishOutcome(self.name, "skipped", detail="comment mode is never")
        if self.marker not in publication.markdown:
            raise PublishError(
                "the comment body lacks perfci's marker, so it could never be updated in place",
                "render it with perfci.render.markdown.render_comment",
            )
        settings = self.settings
        gh = _client(settings)
        repo = gh.get_repo(settings.repository)
        number = find_pull_request(repo, settings)
        login = _own_login(gh, settings)
        what = f"comment on pull request #{number}"
        with _github_call(settings, what, "comment"):
            issue = repo.get_issue(number)
            ours = [
                c
                for c in issue.get_comments()
                if c.user is not None and c.user.login == login and self.marker in (c.body or "")
            ]
            if not ours:
                comment = issue.create_comment(publication.markdown)
                return PublishOutcome(self.name, "created", comment.html_url, f"PR #{number}")
            comment = ours[0]
            new_print = fingerprint(publication.comparison)
            if self.mode == "on-change" and _fingerprint_of(comment.body or "") == new_print:
                return PublishOutcome(self.name, "unchanged", comment.html_url, "verdicts unchanged")
            if comment.body == publication.markdown:
                return PublishOutcome(self.name, "unchanged", comment.html_url, "same text")
            comment.edit(publication.markdown)
            return PublishOutcome(self.name, "updated", comment.html_url, f"PR #{number}")


def _conclusion(comparison: Comparison) -> Literal["success", "failure"]:
    return "success" if comparison.passed else "failure"


def _status_line(comparison: Comparison) -> str:
    from perfci.render.markdown import headline

    title, _ = headline(comparison)
    return title.split("perfci: ", 1)[-1]


@dataclass(frozen=True)
class CheckRunPublisher(Publisher):
    """A completed check run named "perfci" on the head commit: what branch protection can require.

    Needs `checks: write`, which GitHub grants only to app tokens such as GITHUB_TOKEN.
    """

    settings: GitHubSettings
    check_name: str = CHECK_NAME
    name: str = "check-run"

    def publish(self, publication: Publication) -> PublishOutcome:
        settings = self.settings
        if settings.head_sha is None:
            raise ConfigError("a check run needs the head commit", "pass --sha <head sha>")
        repo = _client(settings).get_repo(settings.repository)
        summary = publication.markdown
        if len(summary) > CHECK_SUMMARY_LIMIT:
            summary = summary[: CHECK_SUMMARY_LIMIT - 40] + "\n\n_Cut; see the PR comment._\n"
        with _github_call(settings, f"create a check run on {settings.head_sha[:12]}", "check"):
            run = repo.create_check_run(
                name=self.check_name,
                head_sha=settings.head_sha,
                status="completed",
                conclusion=_conclusion(publication.comparison),
                output={"title": _status_line(publication.comparison), "summary": summary},
                **({"details_url": publication.comparison.run_url} if publication.comparison.run_url else {}),
            )
        return PublishOutcome(self.name, "created", run.html_url, _conclusion(publication.comparison))


@dataclass(frozen=True)
class CommitStatusPublisher(Publisher):
    """A commit status with context "perfci": the fallback for tokens that cannot write check runs."""

    settings: GitHubSettings
    context: str = CHECK_NAME
    name: str = "commit-status"

    def publish(self, publication: Publication) -> PublishOutcome:
        settings = self.settings
        if settings.head_sha is None:
            raise ConfigError("a commit status needs the head commit", "pass --sha <head sha>")
        repo = _client(settings).get_repo(settings.repository)
        comparison = publication.comparison
        with _github_call(settings, f"set the commit status of {settings.head_sha[:12]}", "status"):
            repo.get_commit(settings.head_sha).create_status(
                state=_conclusion(comparison),
                description=_status_line(comparison)[:STATUS_DESCRIPTION_LIMIT],
                context=self.context,
                **({"target_url": comparison.run_url} if comparison.run_url else {}),
            )
        return PublishOutcome(self.name, "created", None, _conclusion(comparison))


def publish_all(publishers: list[Publisher], publication: Publication) -> list[PublishOutcome]:
    """Runs every publisher; the first failure is raised after the others had their turn."""
    outcomes: list[PublishOutcome] = []
    first_error: PublishError | None = None
    for publisher in publishers:
        try:
            outcomes.append(publisher.publish(publication))
        except PublishError as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return outcomes
