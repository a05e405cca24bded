"""A run that is terminated (a cancelled CI job, `kill`) stops what it started and keeps what it measured."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfci.errors import ExitCode
from tests.builders import userservice_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "long"
default_scenarios = ["journeys"]
runs_dir = "runs"

[tool.perfci.service]
seed_users = 100
env = { USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }

[tool.perfci.profiles.long]
trials = 1
duration_s = 60
warmup_s = 0
users = 2
spawn_rate = 10
"""


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _terminate_once_running(args: list[str], cwd: Path, running: str) -> tuple[int, str, list[int], float]:
    """Start `perfci <args>`, send SIGTERM 3 s after `running` shows in its log; exit code, log, service ports
    and the seconds from the signal to the exit."""
    log = cwd / "perfci.log"
    with log.open("wb") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "perfci.cli", *args, "--no-progress"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while running not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
                assert run.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(0.2)
            ports = [int(p) for p in re.findall(r"ready at http://127\.0\.0\.1:(\d+)", log.read_text(encoding="utf-8"))]
            time.sleep(3)  # Locust is running its users
            signalled = time.monotonic()
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=30)  # trials are 60 s long: waiting them out would time out here
            took = time.monotonic() - signalled
        finally:
            if run.poll() is None:
                run.kill()
    return code, log.read_text(encoding="utf-8"), ports, took


def _nothing_left_of(ports: list[int]) -> None:
    for port in ports:
        assert not _listening(port)  # the service was stopped, not orphaned
        leftovers = subprocess.run(["pgrep", "-f", f"--host http://127.0.0.1:{port}"], capture_output=True, check=False)
        assert leftovers.stdout == b"", leftovers.stdout  # no Locust process left either


def test_sigterm_stops_the_service_and_locust_and_exits_3(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    config = tmp_path / "pyproject.toml"
    config.write_text(PYPROJECT + userservice_tables(), encoding="utf-8")
    code, text, ports, _ = _terminate_once_running(
        ["run", "--config", str(config), "--against-baseline"], tmp_path, "trial 1/1"
    )

    assert code == ExitCode.INFRASTRUCTURE, text
    assert "interrupted" in text
    assert len(ports) == 1, text
    _nothing_left_of(ports)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "journeys" / "candidate-0" / "locust.log").exists()
    assert (run_dir / "targets" / "candidate" / "service.log").exists()


def _git_project(root: Path) -> None:
    """A committed copy of the service and scenarios: what an A/B's base worktree is made from."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.sqlite3*")
    shutil.copytree(REPO / "service" / "userservice", root / "service" / "userservice", ignore=ignore)
    shutil.copy2(REPO / "service" / "pyproject.toml", root / "service" / "pyproject.toml")
    shutil.copytree(REPO / "scenarios", root / "scenarios", ignore=ignore)
    (root / "pyproject.toml").write_text(
        PYPROJECT + 'ab_schedule = "concurrent"\n' + userservice_tables(workdir="service"), encoding="utf-8"
    )
    (root / ".gitignore").write_text("runs/\n", encoding="utf-8")
    git = ["git", "-C", str(root), "-c", "user.email=t@perfci.test", "-c", "user.name=perfci"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "project"]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=60)


def test_sigterm_ends_both_concurrent_trials_at_once_and_stops_both_services(tmp_path: Path) -> None:
    # The trials of a concurrent pair run in threads, which a signal does not reach: the run must stop them.
    _git_project(tmp_path)
    code, text, ports, took = _terminate_once_running(["run", "--ab", "HEAD"], tmp_path, "pair 1/1")

    assert code == ExitCode.INFRASTRUCTURE, text
    assert "interrupted" in text
    assert took < 20, took
    assert len(ports) == 2, text
    _nothing_left_of(ports)
    (run_dir,) = (tmp_path / "runs").iterdir()
    for arm in ("base", "candidate"):
        assert (run_dir / "journeys" / f"{arm}-0" / "samples.parquet").exists()  # what was measured is kept
