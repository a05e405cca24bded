"""A run that is terminated (a cancelled CI job, `kill`) stops what it started and keeps what it measured."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfci.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "long"
scenarios = ["journeys"]
runs_dir = "runs"

[tool.perfci.service]
service_dir = "{service_dir}"
seed_users = 100
env = {{ USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }}

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


def test_sigterm_stops_the_service_and_locust_and_exits_3(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    config = tmp_path / "pyproject.toml"
    config.write_text(PYPROJECT.format(service_dir=REPO / "service"), encoding="utf-8")
    log = tmp_path / "perfci.log"
    with log.open("wb") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "perfci.cli", "run", "--config", str(config), "--no-progress"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "trial 1/1" not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
                assert run.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(0.2)
            text = log.read_text(encoding="utf-8")
            port = int(re.search(r"ready at http://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
            time.sleep(3)  # Locust is running its users
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()

    text = log.read_text(encoding="utf-8")
    assert code == ExitCode.INFRASTRUCTURE, text
    assert "interrupted" in text
    assert not _listening(port)  # the service was stopped, not orphaned
    leftovers = subprocess.run(["pgrep", "-f", f"--host http://127.0.0.1:{port}"], capture_output=True, check=False)
    assert leftovers.stdout == b"", leftovers.stdout  # no Locust process left either
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "journeys" / "candidate-0" / "locust.log").exists()
    assert (run_dir / "targets" / "candidate" / "service.log").exists()
