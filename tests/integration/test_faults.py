"""Fault injection against the real `perfci` command: every fault gets its exit code, two lines and no traceback.

Exit codes are the gate's promise: 0 ok, 1 regression or SLO breach, 2 usage or configuration, 3
infrastructure. Each case runs the real CLI in a subprocess (smoke profile, process target, 127.0.0.1)
and checks the code, what the user reads, and what is left on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psutil
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED_USERS = "40"  # enough for the journeys scenario's four users; seeding 2000 would cost most of a run
RUN_TIMEOUT_S = 150
PASSWORD = "s3cret-pw"  # trust authentication accepts and ignores it


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFCI_", "USERSVC_", "GITHUB_"))}
    env["PERFCI_SEED_USERS"] = SEED_USERS
    return env | (extra or {})


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "perfci.cli", *args]


def perfci(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    done = subprocess.run(
        _command(*args), cwd=cwd, env=_environment(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


def smoke_args(runs: Path, baselines: Path, *extra: str) -> list[str]:
    return [
        "--profile", "smoke", "--target", "process", "--scenario", "journeys", "--no-progress",
        "--runs-dir", str(runs), "--baselines-dir", str(baselines), *extra,
    ]  # fmt: skip


def assert_fails(result: Result, code: int, *needles: str) -> None:
    """The exit code, an `error:` line and a `hint:` line, each needle in the output, and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.code == code, result.stderr
    assert "\nerror: " in "\n" + result.stderr, result.stderr
    assert "\nhint: " in "\n" + result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def only_run_dir(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------------------------------------
# One real measurement, shared: `perfci baseline` repairing a corrupt baseline, with the scenario given twice.
# --------------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    result: Result
    runs: Path
    baselines: Path
    run_dir: Path


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    root = tmp_path_factory.mktemp("measured")
    runs, baselines = root / "runs", root / "baselines"
    baselines.mkdir()
    (baselines / "journeys.json").write_text('{"schema_version": 1, "scenario": "jour', encoding="utf-8")
    args = smoke_args(runs, baselines, "--scenario", "journeys")
    server = os.environ.get("PERFCI_TEST_DATABASE_URL")
    if server:  # on PostgreSQL, with a password in the URL that must never reach the disk
        parts = urlsplit(server)
        netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
        args += ["--database-url", urlunsplit(parts._replace(netloc=netloc))]
    result = perfci("baseline", *args, timeout=RUN_TIMEOUT_S)
    assert result.code == 0, result.stderr
    return Measured(result, runs, baselines, only_run_dir(runs))


def test_a_database_password_is_never_written(measured: Measured) -> None:
    if not os.environ.get("PERFCI_TEST_DATABASE_URL"):
        pytest.skip("PERFCI_TEST_DATABASE_URL is not set: the run used SQLite")
    run_json = (measured.run_dir / "run.json").read_text(encoding="utf-8")
    assert ":***@" in run_json
    written = [p for p in measured.run_dir.rglob("*") if p.is_file() and p.suffix in {".json", ".md", ".html", ".log"}]
    assert written
    for path in written:
        assert PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path
    assert PASSWORD not in measured.result.stderr


def copy_run(measured: Measured, tmp_path: Path) -> Path:
    run_dir = tmp_path / "runs" / measured.run_dir.name
    shutil.copytree(measured.run_dir, run_dir)
    return run_dir


def test_perfci_baseline_replaces_a_corrupt_baseline(measured: Measured) -> None:
    assert "Traceback" not in measured.result.stderr
    assert "replacing an unusable baseline" in measured.result.stderr
    stored = json.loads(_measured_baseline(measured).read_text(encoding="utf-8"))
    assert stored["scenario"] == "journeys"
    assert stored["endpoints"]
    # The corrupt file (here in the flat layout of earlier versions) is set aside, so a run's check passes.
    assert not (measured.baselines / "journeys.json").exists()
    assert (measured.baselines / "journeys.json.unusable").is_file()
    assert "set aside as" in measured.result.stderr


def test_a_scenario_given_twice_runs_once(measured: Measured) -> None:
    comparison = json.loads((measured.run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert [s["scenario"] for s in comparison["scenarios"]] == ["journeys"]
    assert sorted(p.name for p in (measured.run_dir / "journeys").iterdir()) == ["candidate-0"]


def test_report_on_a_truncated_samples_file_is_exit_2(measured: Measured, tmp_path: Path) -> None:
    run_dir = copy_run(measured, tmp_path)
    samples = run_dir / "journeys" / "candidate-0" / "samples.parquet"
    samples.write_bytes(samples.read_bytes()[:300])
    assert_fails(perfci("report", str(run_dir)), 2, str(run_dir), "re-run")
    assert (run_dir / "report.md").is_file()


def test_report_on_a_truncated_run_record_is_exit_2(measured: Measured, tmp_path: Path) -> None:
    run_dir = copy_run(measured, tmp_path)
    (run_dir / "run.json").write_text('{"label": "sm', encoding="utf-8")
    assert_fails(perfci("report", str(run_dir)), 2, str(run_dir / "run.json"))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda path: path.write_bytes(b"\xff\xfe" + path.read_bytes()), "not UTF-8"),
        (lambda path: path.write_text(path.read_text().replace('"schema_version": 1', '"schema_version": 2')), "2"),
    ],
    ids=["not-utf8", "newer-schema"],
)
def test_summary_of_a_damaged_comparison_is_exit_2(
    measured: Measured, tmp_path: Path, damage: Callable[[Path], None], needle: str
) -> None:
    run_dir = copy_run(measured, tmp_path)
    damage(run_dir / "comparison.json")
    assert_fails(perfci("summary", str(run_dir)), 2, str(run_dir / "comparison.json"), needle)


def test_summary_from_a_subfolder_finds_the_projects_runs(measured: Measured, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "service").mkdir(parents=True)
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (project / "pyproject.toml").write_text(pyproject.replace('runs_dir = ".perfci/runs"', 'runs_dir = "my-runs"'))
    shutil.copytree(measured.run_dir, project / "my-runs" / measured.run_dir.name)
    result = perfci("summary", cwd=project / "service")
    assert result.code == 0, result.stderr
    assert "GET /users/me" in result.stdout


# --------------------------------------------------------------------------------------------------------
# Bad input: exit 2 before any load, naming the file or key.
# --------------------------------------------------------------------------------------------------------


def _measured_baseline(measured: Measured) -> Path:
    """The baseline `perfci baseline` wrote, in its testbed's folder."""
    (path,) = measured.baselines.glob("*/journeys.json")
    return path


def _nan_baseline(measured: Measured) -> str:
    text = _measured_baseline(measured).read_text(encoding="utf-8")
    data = json.loads(text)
    for endpoint in data["endpoints"].values():
        for trial in endpoint["trials"]:
            trial["p50"] = float("nan")
    return json.dumps(data)


def _no_endpoints(measured: Measured) -> str:
    data = json.loads(_measured_baseline(measured).read_text(encoding="utf-8"))
    return json.dumps(data | {"endpoints": {}})


@pytest.mark.parametrize(
    ("write", "needle"),
    [
        (lambda path, m: path.write_text(_nan_baseline(m)), "p50 is nan"),
        (lambda path, m: path.write_text(_no_endpoints(m)), "no endpoints"),
        (lambda path, m: path.write_bytes(b"\xff" * 20), "not UTF-8"),
        (lambda path, m: path.mkdir(), "is a directory"),
    ],
    ids=["nan", "no-endpoints", "not-utf8", "directory"],
)
def test_an_unusable_baseline_stops_the_run_before_any_load(
    measured: Measured, tmp_path: Path, write: Callable[[Path, Measured], None], needle: str
) -> None:
    baselines, runs = tmp_path / "baselines", tmp_path / "runs"
    baselines.mkdir()
    write(baselines / "journeys.json", measured)
    result = perfci("run", "--against-baseline", *smoke_args(runs, baselines))
    assert_fails(result, 2, str(baselines / "journeys.json"), needle, "perfci baseline")
    assert not runs.exists()  # refused before a run directory, a boot or any load


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        ([], {"PERFCI_SCENARIOS": ""}, ["scenarios", "PERFCI_SCENARIOS", "no scenario"]),
        (["--users", "1000000"], {}, ["profile.users", "5000"]),
        (["--users", "0"], {}, ["profile.users"]),
        (["--url", "ftp://127.0.0.1:1"], {}, ["http(s)"]),
        (["--seed-users", "-1"], {}, ["service.seed_users"]),
    ],
    ids=["no-scenarios", "users-1e6", "users-0", "url-scheme", "seed-users-negative"],
)
def test_bad_arguments_are_exit_2(tmp_path: Path, args: list[str], env: dict[str, str], needles: list[str]) -> None:
    runs = tmp_path / "runs"
    command = ["run", "--profile", "smoke", "--target", "process", "--runs-dir", str(runs), *args]
    if not env:
        command += ["--scenario", "journeys"]
    result = perfci(*command, env=env)
    assert_fails(result, 2, *needles)
    assert not runs.exists()


CONFIG_CASES = {
    "alpha": ("[tool.perfci.statistics]\nalpha = 5\n", ["statistics", "alpha = 5.0"]),
    "power": ("[tool.perfci.statistics]\npower = 7\n", ["statistics", "power = 7.0"]),
    "negative-users": (
        '[tool.perfci.scenarios.auth]\nfile = "scenarios/auth.py"\nusers = -6\n',
        ["scenarios.auth.users", "greater than or equal to 1"],
    ),
    "removed-key": ("[tool.perfci.scenario_users]\nauthh = 6\n", ["scenario_users", "users in"]),
}


MINIMAL_CONFIG = """[tool.perfci]
profile = "smoke"

[tool.perfci.profiles.smoke]
trials = 1
duration_s = 4
warmup_s = 1
users = 4
spawn_rate = 20

"""


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_out_of_bounds_configuration_names_the_key_and_the_file(tmp_path: Path, case: str) -> None:
    table, needles = CONFIG_CASES[case]
    config = tmp_path / "pyproject.toml"
    config.write_text(MINIMAL_CONFIG + table, encoding="utf-8")
    result = perfci("run", "--config", str(config), "--runs-dir", str(tmp_path / "runs"))
    assert_fails(result, 2, str(config), *needles)


def test_a_config_that_is_a_directory_or_not_utf8_is_exit_2(tmp_path: Path) -> None:
    assert_fails(perfci("run", "--config", str(tmp_path)), 2, str(tmp_path), "directory")
    binary = tmp_path / "pyproject.toml"
    binary.write_bytes(b"[tool.perfci]\nprofile = '\xff'\n")
    assert_fails(perfci("run", "--config", str(binary)), 2, str(binary), "not UTF-8")


def test_trends_over_a_history_that_is_not_utf8_is_exit_2(tmp_path: Path) -> None:
    history = tmp_path / "history" / "journeys.jsonl"
    history.parent.mkdir(parents=True)
    history.write_bytes(b'{"scenario": "\xff"}\n')
    assert_fails(perfci("trends", "--baselines-dir", str(tmp_path)), 2, str(history), "not UTF-8")


@pytest.mark.parametrize("kind", ["proc", "regular-file"])
def test_a_runs_dir_that_cannot_be_created_is_exit_2(tmp_path: Path, kind: str) -> None:
    if kind == "proc":
        runs = Path("/proc/perfci-runs")
    else:
        runs = tmp_path / "a-file"
        runs.write_text("not a folder")
    result = perfci("run", *smoke_args(runs, tmp_path))
    assert_fails(result, 2, "cannot create the run directory", "--runs-dir")


# --------------------------------------------------------------------------------------------------------
# Infrastructure: exit 3, said plainly, with what was measured kept.
# --------------------------------------------------------------------------------------------------------


def test_a_url_that_refuses_connections_fails_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    url = f"http://127.0.0.1:{port}"
    runs = str(tmp_path / "runs")
    # One running service: measured on its own (an A/B needs --base-url and --candidate-url).
    args = ["--url", url, "--against-baseline", "--profile", "smoke", "--scenario", "journeys", "--runs-dir", runs]
    result = perfci("run", *args)
    assert_fails(result, 3, f"nothing listens at http://127.0.0.1:{port}")
    assert time.monotonic() - started < 30  # it waited the 90-s boot timeout before
    # The failed run says why on disk, in the comparison and the comment's text.
    assert_no_verdict(only_run_dir(tmp_path / "runs"), "boot", "nothing listens at", result.stdout)
    comparison = json.loads((only_run_dir(tmp_path / "runs") / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["candidate"]["label"] == url  # the service it tried to measure, not this checkout


def assert_no_verdict(run_dir: Path, kind: str, words: str, stdout: str, summary: Path | None = None) -> None:
    """A comparison that carries the failure, and every rendering leads with "no verdict" instead of verdicts."""
    comparison = json.loads((run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["scenarios"] == []
    failure = comparison["failure"]
    assert failure["kind"] == kind
    assert words in failure["message"]
    assert failure["hint"]
    headline = f"no verdict: infrastructure failure: {words}"
    renderings = {
        "terminal": stdout,
        "report.md": (run_dir / "report.md").read_text(encoding="utf-8"),
        "report.html": (run_dir / "report.html").read_text(encoding="utf-8"),
    }
    if summary is not None:
        renderings["job summary"] = summary.read_text(encoding="utf-8")
    for name, text in renderings.items():
        assert headline in text, (name, text[:500])
        assert "❌" not in text, name
        if name != "report.html":  # its style sheet names the verdicts' classes
            assert "regression" not in text, name


def test_a_service_that_never_boots_is_infrastructure_with_a_comparison(tmp_path: Path) -> None:
    runs, summary = tmp_path / "runs", tmp_path / "step-summary.md"
    env = {"PERFCI_BOOT_TIMEOUT": "0.2", "GITHUB_STEP_SUMMARY": str(summary)}
    result = perfci("run", "--against-baseline", *smoke_args(runs, tmp_path / "baselines"), env=env)
    assert_fails(result, 3, f"seeding {SEED_USERS} users took longer than 0.2 s", "raise boot_timeout_s")
    run_dir = only_run_dir(runs)
    log = run_dir / "targets" / "candidate" / "service.log"
    assert_no_verdict(run_dir, "boot", f"seeding {SEED_USERS} users took longer than 0.2 s", result.stdout, summary)
    comparison = json.loads((run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["failure"]["log"] == str(log)
    assert log.is_file()
    assert f"last lines of {log}" in result.stderr  # the log's tail on the terminal, not in the comment


def _running(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(*args), cwd=REPO, env=_environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_descendant(
    parent: subprocess.Popen[str], words: tuple[str, ...], timeout_s: float = 90
) -> psutil.Process:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert parent.poll() is None, parent.communicate()[1]
        for child in psutil.Process(parent.pid).children(recursive=True):
            try:
                if all(word in " ".join(child.cmdline()) for word in words):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError(f"no process with {words} under perfci")


def _wait_for_samples(run_root: Path, timeout_s: float = 30) -> None:
    """Until the plugin has flushed a first part file: the trial is under load."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in run_root.glob("*/journeys/candidate-0/parts/part-*.csv")):
            return
        time.sleep(0.2)
    raise AssertionError("no samples were written")


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    """Whatever a test started is ended, even when the test fails half-way."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()  # also closes the pipes of one that ended by itself: no unclosed-file warnings


def test_a_service_killed_mid_trial_is_infrastructure_not_a_regression(
    tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    runs = tmp_path / "runs"
    process = _running("run", "--against-baseline", *smoke_args(runs, tmp_path / "baselines"))
    stopper.append(process)
    service = _wait_for_descendant(process, ("userservice", "serve"))
    _wait_for_samples(runs)
    service.kill()
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    result = Result(process.returncode, "", stderr)
    assert_fails(result, 3, "the service exited during trial 1 of scenario journeys", "exit code -9", "service.log")
    assert "regression" not in stderr
    trial = only_run_dir(runs) / "journeys" / "candidate-0"
    info = json.loads((trial / "trial.json").read_text(encoding="utf-8"))
    assert any("service exited" in flag for flag in info["flags"])
    # No verdict is drawn from a dead service; the comparison, the comment's text and the summary say why.
    comparison = json.loads((only_run_dir(runs) / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["scenarios"] == []
    assert "the service exited during trial 1 of scenario journeys" in comparison["failure"]["message"]
    report = (only_run_dir(runs) / "report.md").read_text(encoding="utf-8")
    assert "no verdict: the service exited during trial 1 of scenario journeys" in report
    assert "no verdict: the service exited" in stdout
    assert "new error" not in report


def test_a_load_generator_killed_mid_trial_is_infrastructure_with_what_it_measured(
    tmp_path: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    runs, summary = tmp_path / "runs", tmp_path / "step-summary.md"
    process = _running(
        "run",
        "--against-baseline",
        *smoke_args(runs, tmp_path / "baselines"),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    stopper.append(process)
    locust = _wait_for_descendant(process, ("locust",))
    _wait_for_samples(runs)
    locust.kill()
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    result = Result(process.returncode, stdout, stderr)
    assert_fails(result, 3, "journeys candidate trial 1: the load generator exited with [-9]")
    run_dir = only_run_dir(runs)
    assert_no_verdict(
        run_dir, "load_generator", "journeys candidate trial 1: the load generator exited", stdout, summary
    )
    trial = run_dir / "journeys" / "candidate-0"
    comparison = json.loads((run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["failure"]["log"] == str(trial / "locust.log")
    # What was measured before the crash is kept: the samples and the trial's record.
    assert len(pd.read_parquet(trial / "samples.parquet")) > 0
    info = json.loads((trial / "trial.json").read_text(encoding="utf-8"))
    assert info["locust_exit_codes"] == [-9]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_trial_keeps_its_samples_and_record(
    tmp_path: Path, stopper: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    runs = tmp_path / "runs"
    process = _running("run", "--against-baseline", *smoke_args(runs, tmp_path / "baselines"))
    stopper.append(process)
    _wait_for_samples(runs)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert process.returncode == 3, stderr
    assert "interrupted" in stderr
    trial = only_run_dir(runs) / "journeys" / "candidate-0"
    assert len(pd.read_parquet(trial / "samples.parquet")) > 0
    info = json.loads((trial / "trial.json").read_text(encoding="utf-8"))
    assert any("interrupted" in flag for flag in info["flags"])
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(runs) in " ".join(p.info["cmdline"] or [])]


def test_a_sigkilled_perfci_takes_its_service_down(tmp_path: Path, stopper: list[subprocess.Popen[str]]) -> None:
    process = _running("run", "--against-baseline", *smoke_args(tmp_path / "runs", tmp_path / "baselines"))
    stopper.append(process)
    service = _wait_for_descendant(process, ("userservice", "serve"))
    port = int(service.cmdline()[service.cmdline().index("--port") + 1])
    locust = _wait_for_descendant(process, ("locust",))
    process.kill()
    process.communicate()
    gone, alive = psutil.wait_procs([service, locust], timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert len(gone) == 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_read_only_runs_dir_is_exit_2(tmp_path: Path) -> None:
    disk = tmp_path / "read-only"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(disk)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = perfci("run", *smoke_args(disk / "runs", tmp_path / "baselines"))
        assert_fails(result, 2, "cannot create the run directory", "Read-only file system", "--runs-dir")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_infrastructure_with_a_clear_message(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (disk / "filler").write_bytes(b"\0" * 1_800_000)  # room for the service's database, not for the samples
        result = perfci("run", *smoke_args(disk / "runs", tmp_path / "baselines"), timeout=RUN_TIMEOUT_S)
        assert "Traceback" not in result.stderr
        assert result.code == 3, result.stderr
        assert "no space left" in result.stderr.lower()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
