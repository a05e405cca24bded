"""The `perfci` command as a user meets it: exit codes and the error text for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.cli import main
from perfci.model import Comparison
from perfci.rundir import COMPARISON_FILE, write_model
from tests.golden.fixtures import FIXTURES

CONFIG = """
[tool.perfci]
profile = "quick"
default_scenarios = ["journeys"]

[tool.perfci.scenarios.journeys]
file = "scenarios/journeys.py"

[tool.perfci.profiles.quick]
trials = 1
duration_s = 1
warmup_s = 0
users = 1
spawn_rate = 1
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    corrupt = tmp_path / "corrupt" / "amd-epyc-2c-process-0e7541ee" / "journeys.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{oops", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for variable in ("PERFCI_PROFILE", "PERFCI_TARGET", "PERFCI_SCENARIOS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def run_dir_with(tmp_path: Path, comparison: Comparison) -> Path:
    directory = tmp_path / ".perfci" / "runs" / "20250101T000000Z-test"
    write_model(directory / COMPARISON_FILE, comparison)
    (directory / "run.json").write_text("{}", encoding="utf-8")
    return directory


def exit_code(argv: list[str]) -> int:
    """main's return value, or argparse's exit status for arguments it rejects itself."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["run", "--profile", "nightly"], 2, "unknown profile 'nightly'", id="unknown-profile"),
        pytest.param(["run", "--duration", "soon"], 2, "not a duration", id="bad-duration"),
        pytest.param(["run", "--target", "url"], 2, "needs the service's address", id="url-without-address"),
        pytest.param(["run", "--scenario", "nope"], 2, "unknown scenario", id="unknown-scenario"),
        pytest.param(["run", "--trials", "0"], 2, "profile.trials (the command line)", id="zero-trials"),
        pytest.param(["summary"], 2, "no perfci runs", id="summary-without-runs"),
        pytest.param(["run"], 2, "is not a git checkout, so there is no main", id="default-ab-outside-git"),
        pytest.param(["run", "--ab", "main", "--against-baseline"], 2, "not allowed with", id="ab-and-baseline"),
        pytest.param(
            ["run", "--against-baseline", "--baselines-dir", "corrupt"],
            2,
            "corrupt/amd-epyc-2c-process-0e7541ee/journeys.json is not valid JSON",
            id="corrupt-baseline-of-another-testbed",
        ),
        pytest.param(["frobnicate"], 2, "invalid choice", id="unknown-command"),
    ],
)
def test_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert exit_code(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "hint:" in err or "usage:" in err


@pytest.mark.parametrize(
    ("fixture", "code"),
    [("all_clear", 0), ("regression", 1), ("slo_breach", 1), ("no_baseline", 0), ("infrastructure_failure", 3)],
)
def test_summary_exit_code_follows_the_verdict(
    project: Path, capsys: pytest.CaptureFixture[str], fixture: str, code: int
) -> None:
    comparison = FIXTURES[fixture]()
    directory = run_dir_with(project, comparison)
    assert main(["summary", str(directory)]) == code
    out = capsys.readouterr().out
    for scenario in comparison.scenarios:
        assert scenario.scenario in out


def test_report_writes_markdown_and_html_of_the_latest_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = run_dir_with(project, FIXTURES["regression"]())
    assert main(["report"]) == 0
    markdown = (directory / "report.md").read_text(encoding="utf-8")
    html = (directory / "report.html").read_text(encoding="utf-8")
    assert "<!-- perfci:summary -->" in markdown
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<svg" in html


def test_corrupt_comparison_is_a_data_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = run_dir_with(project, FIXTURES["all_clear"]())
    (directory / COMPARISON_FILE).write_text('{"schema_version": 1, "mode": "ab"', encoding="utf-8")
    assert main(["summary", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "is not a valid comparison" in err
    assert "hint:" in err


def test_newer_schema_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = run_dir_with(project, FIXTURES["all_clear"]())
    text = (
        (directory / COMPARISON_FILE).read_text(encoding="utf-8").replace('"schema_version": 1', '"schema_version": 99')
    )
    (directory / COMPARISON_FILE).write_text(text.replace('"mode"', '"new_field": 1, "mode"'), encoding="utf-8")
    assert main(["summary", str(directory)]) == 2
    assert "schema version 99" in capsys.readouterr().err


def test_trends_read_one_testbed_at_a_time(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    committed = Path(__file__).resolve().parents[2] / "baselines" / "amd-epyc-2c-process-0e7541ee" / "history"
    for testbed in ("cpu-a-2c-process-11111111", "cpu-b-4c-compose-22222222"):
        shutil.copytree(committed, project / "baselines" / testbed / "history")

    assert main(["trends"]) == 0
    out = capsys.readouterr().out
    assert "testbed cpu-a-2c-process-11111111" in out
    assert "testbed cpu-b-4c-compose-22222222" in out

    assert main(["trends", "--testbed", "cpu-b-4c-compose-22222222"]) == 0
    out = capsys.readouterr().out
    assert "cpu-a-2c" not in out
    assert "testbed cpu-b-4c-compose-22222222" in out

    assert main(["trends", "--testbed", "nowhere"]) == 2
    assert "no history for testbed nowhere" in capsys.readouterr().err


def test_an_unexpected_exception_is_exit_3_with_its_traceback_in_a_log(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in perfci is an infrastructure failure with a log to report, never exit 1 ("regression")."""

    def broken(_: object) -> int:
        raise RuntimeError("an unforeseen bug in postgresql://ci:hunter2@db/x")

    monkeypatch.setattr("perfci.commands.summary.run", broken)
    monkeypatch.setattr("perfci.rundir._run_dirs", [])
    monkeypatch.setenv("TMPDIR", str(project))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert main(["summary"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "error: perfci failed unexpectedly: RuntimeError: an unforeseen bug in postgresql://ci:***@db/x"
    assert lines[1].startswith("hint: the traceback is in ")
    assert "please report it" in lines[1]
    log = Path(lines[1].removeprefix("hint: the traceback is in ").split(";")[0])
    assert log.parent == project
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text
    assert "RuntimeError" in text
    assert "hunter2" not in text


def test_a_crash_during_a_run_keeps_its_log_in_the_run_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfci import rundir

    run_dir = project / "runs" / "one"
    run_dir.mkdir(parents=True)

    def broken(_: object) -> int:
        rundir.note_run_dir(run_dir)
        raise KeyError("surprise")

    monkeypatch.setattr("perfci.commands.summary.run", broken)
    monkeypatch.setattr("perfci.rundir._run_dirs", [])
    assert main(["summary"]) == 3
    assert f"the traceback is in {run_dir / 'crash.log'}" in capsys.readouterr().err
    assert "KeyError: 'surprise'" in (run_dir / "crash.log").read_text(encoding="utf-8")
