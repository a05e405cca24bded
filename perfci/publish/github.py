"""GitHub publishers: the sticky PR comment and a check run, through the REST API.

Calls are retried on GitHub's transient errors and named with the permission they need when refused.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from perfci import verdict
from perfci.errors import ConfigError, PublishError
from perfci.model import Comparison
from perfci.publish.publishers import Publication, Publisher, PublishOutcome
from perfci.render.markdown import MARKER

CommentMode = Literal["always", "on-change", "never"]
# The login GitHub Actions' GITHUB_TOKEN writes as; that token may not read GET /user to learn it.
ACTIONS_BOT_LOGIN = "github-actions[bot]"
DEFAULT_API_URL = "https://api.github.com"
CHECK_NAME = "perfci"
# Check run summaries have their own limit.
CHECK_SUMMARY_LIMIT = 65_535
_FINGERPRINT = re.compile(r"<!-- perfci:fingerprint ([0-9a-f]+) -->")


@dataclass(frozen=True)
class GitHubSettings:
    """Where and how to talk to GitHub. Build with `from_environment` in Actions; tests build it directly."""

    repository: str  # "owner/name"
    token: str
    api_url: str = DEFAULT_API_URL
    pr_number: int | None = None
    head_sha: str | None = None  # finds the PR when no number is given (fork PRs via workflow_run)
    # The measured run's head repository ("owner/name") and branch: with them a PR must match all three,
    # so that another open PR that happens to point at the same commit does not get the comment.
    head_repository: str | None = None
    head_branch: str | None = None
    # Whose comments are perfci's when GET /user is refused (GITHUB_TOKEN is an app token that cannot read it).
    comment_author: str = ACTIONS_BOT_LOGIN
    retries: int = 5
    backoff_s: float = 1.0  # urllib3 backoff factor: 1, 2, 4, 8 ... seconds between retries
    secondary_rate_wait_s: float = 60.0
    # The longest wait for a rate limit to reset: the comment job's timeout is 10 minutes, and failing with
    # a hint to rerun beats being killed silently.
    max_rate_limit_wait_s: float = 180.0
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
            head_repository=environ.get("PERFCI_HEAD_REPOSITORY") or None,
            head_branch=environ.get("PERFCI_HEAD_BRANCH") or None,
            comment_author=environ.get("PERFCI_COMMENT_AUTHOR", ACTIONS_BOT_LOGIN),
        )


# What each failing call needs, named the way a workflow's `permissions:` block spells it.
_PERMISSION = {
    "comment": "pull-requests: write",
    "find-pr": "pull-requests: read",
    "check": "checks: write",
}


def _publish_error(error: Exception, settings: GitHubSettings, what: str, call: str) -> PublishError:
    """Turn a PyGithub or transport failure into a one-line error with the permission it lacked."""
    from github import GithubException

    permission = _PERMISSION[call]
    limited = _rate_limit_error(error, settings, what)
    if limited is not None:
        return limited
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


def _rate_limit_error(error: Exception, settings: GitHubSettings, what: str) -> PublishError | None:
    """A rate limit that outlasted the retries (or the longest wait) is not a missing permission: say so."""
    from github import GithubException

    hint = (
        "nothing is wrong with the permissions; rerun the job once the limit resets "
        f"(perfci waits at most {settings.max_rate_limit_wait_s:.0f} s for it); the results stay on disk"
    )
    if isinstance(error, GithubException) and error.status in (403, 429):
        message = error.data.get("message", "") if isinstance(error.data, dict) else str(error.data)
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        if error.status == 429 or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower():
            return PublishError(f"GitHub's rate limit stopped the attempt to {what} ({error.status}: {message})", hint)
    if not isinstance(error, GithubException) and re.search(r"too many (403|429) error responses", str(error)):
        return PublishError(f"GitHub kept rate-limiting the attempt to {what} after {settings.retries} retries", hint)
    return None


@contextmanager
def _github_call(settings: GitHubSettings, what: str, call: str) -> Iterator[None]:
    from github import GithubException

    try:
        yield
    except (GithubException, OSError) as error:  # requests' errors are OSErrors
        raise _publish_error(error, settings, what, call) from error


def _client(settings: GitHubSettings) -> Any:
    from github import Auth, Github

    return Github(
        auth=Auth.Token(settings.token),
        base_url=settings.api_url,
        retry=_retry_policy(settings),
        timeout=settings.timeout_s,
        per_page=100,
        lazy=True,  # build URLs without a GET per object; each call below is one request
    )


def _retry_policy(settings: GitHubSettings) -> Any:
    """GithubRetry that also retries 429 (with or without Retry-After) and never re-sends a POST that the
    server may have carried out: a 5xx or a lost answer after a POST can hide a comment that exists."""
    from github import GithubRetry

    class PublishRetry(GithubRetry):
        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method == "POST":
                # A rate-limit refusal (403/429) is sure not to have been carried out; a 5xx is not, so the
                # publisher looks for what the POST may have made before it tries again.
                return status_code in (403, 429)
            return bool(super().is_retry(method, status_code, has_retry_after))

        def _is_method_retryable(self, method: str) -> bool:
            return method != "POST" and bool(super()._is_method_retryable(method))  # read errors: answer lost

    return PublishRetry(
        total=settings.retries,
        backoff_factor=settings.backoff_s,
        secondary_rate_wait=settings.secondary_rate_wait_s,
        max_rate_limit_wait=settings.max_rate_limit_wait_s,
        status_forcelist=[429, *range(500, 600)],  # GithubRetry adds 403 and tells rate limits from refusals
        allowed_methods=frozenset({"GET", "POST", "PATCH", "HEAD"}),
    )


def find_pull_request(repo: Any, settings: GitHubSettings) -> int:
    """The PR number: given, or the open PR whose head is `head_sha` (and, when given, whose head repository
    and branch are the measured run's).

    `workflow_run` events list no pull requests for forks, so the SHA is the link: first
    GET /commits/{sha}/pulls, then, since that can miss a fork's head commit, the open PRs' heads. Two open
    PRs can share a head commit (a branch pushed to two forks, or one branch opened twice); the head
    repository and branch tell them apart, and a tie that remains is an error rather than a guess.
    """
    if settings.pr_number is not None:
        return settings.pr_number
    sha = settings.head_sha
    if sha is None:
        raise ConfigError("neither a PR number nor a head SHA was given", "pass --pr N or --sha <head sha>")
    with _github_call(settings, f"find the pull request of commit {sha[:12]}", "find-pr"):
        found = sorted({int(p.number) for p in repo.get_commit(sha).get_pulls() if _is_head(p, settings)})
        if not found:
            found = sorted({int(p.number) for p in repo.get_pulls(state="open") if _is_head(p, settings)})
    if len(found) == 1:
        return found[0]
    if found:
        raise PublishError(
            f"open pull requests {', '.join(f'#{n}' for n in found)} all have head commit {sha[:12]}",
            "pass the head repository and branch (PERFCI_HEAD_REPOSITORY, PERFCI_HEAD_BRANCH) or --pr N",
        )
    raise PublishError(
        f"no open pull request has head commit {sha[:12]} in {settings.repository}"
        + (f" from {settings.head_repository}:{settings.head_branch}" if settings.head_repository else ""),
        "the PR may be closed or force-pushed since the run; nothing to comment on",
    )


def _is_head(pull: Any, settings: GitHubSettings) -> bool:
    """An open PR whose head is the measured commit, from the measured repository and branch when known."""
    head = pull.head
    if pull.state != "open" or settings.head_sha is None or not head.sha.startswith(settings.head_sha):
        return False
    if settings.head_branch is not None and head.ref != settings.head_branch:
        return False
    if settings.head_repository is not None:
        # A deleted fork leaves the PR without a head repository: it cannot be the measured one.
        return head.repo is not None and head.repo.full_name == settings.head_repository
    return True


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


def _post_once(settings: GitHubSettings, create: Callable[[], Any], existing: Callable[[], Any]) -> Any:
    """Send a POST; after a 5xx or a lost answer, look for what it may have made before sending it again.

    The retry policy never re-sends a POST by itself: GitHub can answer 502 to a comment it did create.
    """
    from github import GithubException

    for attempt in range(settings.retries + 1):
        try:
            return create()
        except (GithubException, OSError) as error:
            transient = isinstance(error, OSError) or error.status >= 500
            if not transient or attempt == settings.retries:
                raise
        time.sleep(settings.backoff_s * 2**attempt)
        found = existing()
        if found is not None:
            return found
    raise AssertionError("unreachable: the last attempt returns or raises")


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

    def _ours(self, issue: Any, login: str) -> Any:
        return next((c for c in issue.get_comments() if _is_ours(c, login, self.marker)), None)

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
            comment = self._ours(issue, login)
            if comment is None:
                comment = _post_once(
                    settings, lambda: issue.create_comment(publication.markdown), lambda: self._ours(issue, login)
                )
                if comment.body == publication.markdown:
                    return PublishOutcome(self.name, "created", comment.html_url, f"PR #{number}")
                # Found after a lost answer with other text: another run's comment; bring it up to date.
            new_print = verdict.fingerprint(publication.comparison)
            if self.mode == "on-change" and _fingerprint_of(comment.body or "") == new_print:
                return PublishOutcome(self.name, "unchanged", comment.html_url, "verdicts unchanged")
            if comment.body == publication.markdown:
                return PublishOutcome(self.name, "unchanged", comment.html_url, "same text")
            comment.edit(publication.markdown)
            return PublishOutcome(self.name, "updated", comment.html_url, f"PR #{number}")


def _conclusion(comparison: Comparison) -> Literal["success", "failure"]:
    return "success" if comparison.passed else "failure"


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
            # A second check run of the same name is harmless (GitHub shows the newest), so nothing to look up.
            run = _post_once(
                settings,
                lambda: repo.create_check_run(
                    name=self.check_name,
                    head_sha=settings.head_sha,
                    status="completed",
                    conclusion=_conclusion(publication.comparison),
                    output={"title": verdict.status(publication.comparison), "summary": summary},
                    **({"details_url": publication.comparison.run_url} if publication.comparison.run_url else {}),
                ),
                lambda: None,
            )
        return PublishOutcome(self.name, "created", run.html_url, _conclusion(publication.comparison))
