"""PyGithub against a real local server speaking GitHub's REST shapes: the sticky comment, checks, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfci.errors import ExitCode, PublishError
from perfci.model import Comparison
from perfci.publish.github import CheckRunPublisher, GitHubCommentPublisher, GitHubSettings
from perfci.publish.publishers import FilePublisher, JobSummaryPublisher, Publication, publish_all
from perfci.render.markdown import MARKER, render_comment
from tests.fakes.fake_github import FakeGitHub, Fault, PullRequest, serve
from tests.golden.fixtures import all_clear, regression

pytestmark = pytest.mark.integration

SHA = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.pulls.append(PullRequest(number=7, head_sha=SHA))
    with serve(fake):
        yield fake


def settings(fake: FakeGitHub, **overrides: object) -> GitHubSettings:
    values: dict[str, object] = {
        "repository": fake.repository,
        "token": "t0ken",
        "api_url": fake.url,
        "pr_number": 7,
        "retries": 3,
        "backoff_s": 0.01,
        "secondary_rate_wait_s": 0.05,
        "timeout_s": 5,
    }
    values.update(overrides)
    return GitHubSettings(**values)  # type: ignore[arg-type]


def publication(comparison: Comparison | None = None) -> Publication:
    comparison = comparison or regression()
    return Publication(comparison, render_comment(comparison))


def test_first_run_creates_and_second_updates_the_same_comment(github: FakeGitHub) -> None:
    publisher = GitHubCommentPublisher(settings(github))
    first = publisher.publish(publication(regression()))
    second = publisher.publish(publication(all_clear()))

    assert (first.action, second.action) == ("created", "updated")
    assert len(github.comments[7]) == 1
    assert "all clear" in github.comments[7][0]["body"]
    assert first.url == second.url
    assert len(github.calls("POST", r"/issues/7/comments$")) == 1
    assert len(github.calls("PATCH", r"/issues/comments/")) == 1
    assert github.requests[0].headers["Authorization"] == "token t0ken"


def test_a_foreign_comment_quoting_the_marker_is_never_touched(github: FakeGitHub) -> None:
    foreign = github.add_comment(7, f"I quote perfci:\n{MARKER}\nlooks slow", login="octocat")
    GitHubCommentPublisher(settings(github)).publish(publication())
    GitHubCommentPublisher(settings(github)).publish(publication(all_clear()))

    assert foreign["body"] == f"I quote perfci:\n{MARKER}\nlooks slow"
    assert not any(r.path.endswith(f"/comments/{foreign['id']}") for r in github.calls("PATCH"))
    ours = [c for c in github.comments[7] if c["user"]["login"] == "perfci-bot"]
    assert len(ours) == 1


def test_actions_token_without_user_access_finds_the_bot_comment(github: FakeGitHub) -> None:
    github.login = None  # GET /user -> 403, the comment author is github-actions[bot]
    publisher = GitHubCommentPublisher(settings(github))
    assert publisher.publish(publication()).action == "created"
    assert publisher.publish(publication(all_clear())).action == "updated"
    assert [c["user"]["login"] for c in github.comments[7]] == ["github-actions[bot]"]


def test_on_change_leaves_an_unchanged_verdict_alone(github: FakeGitHub) -> None:
    publisher = GitHubCommentPublisher(settings(github), mode="on-change")
    assert publisher.publish(publication()).action == "created"
    rerun = regression().model_copy(update={"run_url": "https://github.com/acme/users/actions/runs/2"})
    assert publisher.publish(publication(rerun)).action == "unchanged"
    assert publisher.publish(publication(all_clear())).action == "updated"
    assert len(github.calls("PATCH")) == 1


def test_never_mode_makes_no_request(github: FakeGitHub) -> None:
    outcome = GitHubCommentPublisher(settings(github), mode="never").publish(publication())
    assert outcome.action == "skipped"
    assert github.requests == []


@pytest.mark.parametrize("miss_commit_endpoint", [False, True], ids=["commit-pulls", "open-pulls-fallback"])
def test_two_prs_on_one_commit_are_told_apart_by_head_repository_and_branch(
    github: FakeGitHub, miss_commit_endpoint: bool
) -> None:
    github.commit_pulls_miss = miss_commit_endpoint
    github.pulls.insert(0, PullRequest(number=5, head_sha=SHA, head_repository="mallory/users", head_ref="feature"))
    github.pulls.append(PullRequest(number=9, head_sha=SHA, head_repository="acme/users", head_ref="other"))
    chosen = settings(github, pr_number=None, head_sha=SHA, head_repository="acme/users", head_branch="feature")
    assert GitHubCommentPublisher(chosen).publish(publication()).detail == "PR #7"
    assert set(github.comments) == {7}


def test_two_prs_on_one_commit_without_head_details_is_an_error_not_a_guess(github: FakeGitHub) -> None:
    github.pulls.append(PullRequest(number=9, head_sha=SHA, head_repository="mallory/users"))
    with pytest.raises(PublishError, match="#7, #9") as caught:
        GitHubCommentPublisher(settings(github, pr_number=None, head_sha=SHA)).publish(publication())
    assert "PERFCI_HEAD_REPOSITORY" in caught.value.hint
    assert github.comments == {}


def test_a_pr_from_a_deleted_fork_is_not_the_measured_one(github: FakeGitHub) -> None:
    github.pulls[0].head_repository = None
    chosen = settings(github, pr_number=None, head_sha=SHA, head_repository="acme/users", head_branch="feature")
    with pytest.raises(PublishError, match="from acme/users:feature"):
        GitHubCommentPublisher(chosen).publish(publication())


@pytest.mark.parametrize("miss_commit_endpoint", [False, True], ids=["commit-pulls", "open-pulls-fallback"])
def test_pr_is_found_from_the_head_sha(github: FakeGitHub, miss_commit_endpoint: bool) -> None:
    github.pulls.insert(0, PullRequest(number=3, head_sha="1" * 40))
    github.commit_pulls_miss = miss_commit_endpoint
    outcome = GitHubCommentPublisher(settings(github, pr_number=None, head_sha=SHA)).publish(publication())
    assert outcome.detail == "PR #7"
    assert 7 in github.comments
    assert github.calls("GET", rf"/commits/{SHA}/pulls")


def test_no_open_pr_for_the_sha_is_a_publish_error(github: FakeGitHub) -> None:
    with pytest.raises(PublishError, match="no open pull request"):
        GitHubCommentPublisher(settings(github, pr_number=None, head_sha="a" * 40)).publish(publication())


def test_server_errors_are_retried(github: FakeGitHub) -> None:
    github.faults.append(Fault("GET", r"/issues/7/comments", 502, times=2))
    github.faults.append(Fault("POST", r"/issues/7/comments", 503, times=1))
    outcome = GitHubCommentPublisher(settings(github)).publish(publication())
    assert outcome.action == "created"
    # Two GETs retried, one that finds no comment, one look after the failed POST before it is sent again.
    assert len(github.calls("GET", r"/issues/7/comments")) == 4
    assert len(github.calls("POST", r"/issues/7/comments")) == 2
    assert len(github.comments[7]) == 1


def test_a_post_that_github_carried_out_but_answered_502_is_not_repeated(github: FakeGitHub) -> None:
    github.faults.append(Fault("POST", r"/issues/7/comments", 502, after_success=True))
    outcome = GitHubCommentPublisher(settings(github)).publish(publication())
    assert outcome.action == "created"
    assert len(github.calls("POST", r"/issues/7/comments")) == 1
    assert len(github.comments[7]) == 1


def test_a_post_whose_answer_was_lost_after_another_run_commented_updates_that_comment(github: FakeGitHub) -> None:
    github.faults.append(Fault("POST", r"/issues/7/comments", 504, after_success=True))
    first = regression()
    GitHubCommentPublisher(settings(github)).publish(publication(first))
    github.comments[7][0]["body"] = render_comment(all_clear())  # as if a concurrent run had written it
    github.faults.append(Fault("POST", r"/issues/7/comments", 504, after_success=True))
    outcome = GitHubCommentPublisher(settings(github)).publish(publication(first))
    assert outcome.action == "updated"
    assert len(github.comments[7]) == 1
    assert github.comments[7][0]["body"] == render_comment(first)


def test_a_429_without_retry_after_is_retried(github: FakeGitHub) -> None:
    github.faults.append(Fault("GET", r"/issues/7/comments", 429, body={"message": "Too many requests"}))
    github.faults.append(Fault("POST", r"/issues/7/comments", 429, body={"message": "Too many requests"}))
    assert GitHubCommentPublisher(settings(github)).publish(publication()).action == "created"
    assert len(github.calls("POST", r"/issues/7/comments")) == 2
    assert len(github.comments[7]) == 1


def test_a_primary_rate_limit_longer_than_the_cap_fails_fast_with_a_rate_limit_hint(github: FakeGitHub) -> None:
    reset = str(int(time.time()) + 3600)
    github.faults.append(
        Fault(
            "GET",
            r"/issues/7/comments",
            403,
            body={"message": "API rate limit exceeded for installation ID 1."},
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        )
    )
    started = time.monotonic()
    with pytest.raises(PublishError, match="rate limit") as caught:
        GitHubCommentPublisher(settings(github, max_rate_limit_wait_s=1.0)).publish(publication())
    assert time.monotonic() - started < 10
    assert "permissions" in caught.value.hint
    assert "grant" not in caught.value.hint
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE


def test_rate_limits_that_outlast_the_retries_do_not_blame_permissions(github: FakeGitHub) -> None:
    github.faults.append(Fault("GET", r"/issues/7/comments", 429, times=100, body={"message": "Too many"}))
    with pytest.raises(PublishError, match="rate-limiting") as caught:
        GitHubCommentPublisher(settings(github, retries=2)).publish(publication())
    assert "grant" not in caught.value.hint


def test_secondary_rate_limit_is_waited_out(github: FakeGitHub) -> None:
    github.faults.append(
        Fault("POST", r"/issues/7/comments", 403, body={"message": "You have exceeded a secondary rate limit."})
    )
    assert GitHubCommentPublisher(settings(github)).publish(publication()).action == "created"
    assert len(github.calls("POST", r"/issues/7/comments")) == 2


def test_persistent_server_errors_end_as_publish_error(github: FakeGitHub) -> None:
    github.faults.append(Fault("GET", r"/issues/7/comments", 500, times=100))
    with pytest.raises(PublishError) as caught:
        GitHubCommentPublisher(settings(github, retries=2)).publish(publication())
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE
    assert len(github.calls("GET", r"/issues/7/comments")) == 3


@pytest.mark.parametrize(
    ("status", "message", "hint"),
    [
        (401, "rejected the token", "GITHUB_TOKEN"),
        (403, "refused", "pull-requests: write"),
        (404, "404", "pull-requests: write"),
    ],
)
def test_auth_errors_name_the_missing_permission(github: FakeGitHub, status: int, message: str, hint: str) -> None:
    github.faults.append(Fault("POST", r"/issues/7/comments", status, body={"message": "Resource not accessible"}))
    with pytest.raises(PublishError, match=message) as caught:
        GitHubCommentPublisher(settings(github)).publish(publication())
    assert hint in caught.value.hint
    assert caught.value.exit_code == 3


def test_check_run_carries_the_conclusion(github: FakeGitHub) -> None:
    publisher = CheckRunPublisher(settings(github, head_sha=SHA))
    publisher.publish(publication(regression()))
    publisher.publish(publication(all_clear()))
    assert [r["conclusion"] for r in github.check_runs] == ["failure", "success"]
    assert github.check_runs[0]["head_sha"] == SHA
    assert github.check_runs[0]["output"]["title"] == "2 regressions"
    assert github.check_runs[0]["details_url"].startswith("https://github.com/acme/users/actions/runs/")


def test_check_run_is_posted_again_after_a_server_error(github: FakeGitHub) -> None:
    github.faults.append(Fault("POST", r"/check-runs$", 502, times=2))
    outcome = CheckRunPublisher(settings(github, head_sha=SHA)).publish(publication())
    assert outcome.action == "created"
    assert len(github.calls("POST", r"/check-runs$")) == 3
    assert [r["conclusion"] for r in github.check_runs] == ["failure"]


def test_check_run_without_permission_says_checks_write(github: FakeGitHub) -> None:
    github.faults.append(
        Fault("POST", r"/check-runs$", 403, body={"message": "Resource not accessible by integration"})
    )
    with pytest.raises(PublishError) as caught:
        CheckRunPublisher(settings(github, head_sha=SHA)).publish(publication())
    assert "checks: write" in caught.value.hint


def test_a_failed_publish_keeps_the_files_and_runs_the_others(github: FakeGitHub, tmp_path: Path) -> None:
    github.faults.append(Fault("POST", r"/issues/7/comments", 403))
    report = tmp_path / "report.md"
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    publishers = [
        FilePublisher(report),
        GitHubCommentPublisher(settings(github)),
        JobSummaryPublisher(summary),
    ]
    with pytest.raises(PublishError):
        publish_all(publishers, publication())
    assert report.read_text().startswith(MARKER)
    assert summary.read_text().startswith("earlier step\n" + MARKER)


def test_settings_from_environment() -> None:
    env = {"GITHUB_TOKEN": "x", "GITHUB_REPOSITORY": "acme/users", "GITHUB_API_URL": "https://ghe.example/api/v3/"}
    built = GitHubSettings.from_environment(head_sha=SHA, environ=env)
    assert built.api_url == "https://ghe.example/api/v3"
    assert built.repository == "acme/users"
    assert (built.head_repository, built.head_branch) == (None, None)
    env |= {"PERFCI_HEAD_REPOSITORY": "fork/users", "PERFCI_HEAD_BRANCH": "fix"}
    built = GitHubSettings.from_environment(head_sha=SHA, environ=env)
    assert (built.head_repository, built.head_branch) == ("fork/users", "fix")
    with pytest.raises(PublishError, match="GITHUB_TOKEN"):
        GitHubSettings.from_environment(pr_number=1, environ={"GITHUB_REPOSITORY": "acme/users"})
