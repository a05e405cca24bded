"""Locust workers on other hosts, played on loopback: separate worker processes in their own folder, without
access to the trial's folder, reach perfci's master through --master-bind-host and send their samples back
over Locust's messaging (docs/distributed-load.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perfci.errors import LoadError
from perfci.measure.distributed import MASTER_HOST_ENV, MASTER_PORT_ENV, REMOTE_WORKERS_ENV
from perfci.measure.load import TrialSpec, run_trial
from perfci.measure.locust_plugin import SAMPLES_DIR_ENV
from perfci.rundir import LOCUST_STATS
from perfci.targets.base import Target
from perfci.targets.health import free_port
from tests.builders import read_trial
from tests.integration.conftest import LOAD_SEED_USERS, SCENARIOS_DIR

pytestmark = pytest.mark.integration

Spec = Callable[..., TrialSpec]


def locust_request_count(trial_dir: Path) -> int:
    entries = json.loads((trial_dir / f"{LOCUST_STATS}.json").read_text(encoding="utf-8"))
    return sum(int(entry["num_requests"]) for entry in entries)


def _free_port_pair() -> int:
    """A port whose successor is free too (the base arm's master would take it)."""
    while True:
        port = free_port()
        if port < 65535:
            return port


@pytest.fixture
def master_port(monkeypatch: pytest.MonkeyPatch) -> int:
    port = _free_port_pair()
    monkeypatch.setenv(REMOTE_WORKERS_ENV, "2")
    monkeypatch.setenv(MASTER_HOST_ENV, "127.0.0.1")
    monkeypatch.setenv(MASTER_PORT_ENV, str(port))
    return port


def _start_remote_workers(count: int, port: int, elsewhere: Path) -> list[subprocess.Popen[bytes]]:
    """Workers as docs/distributed-load.md has another host run them: their own folder, no samples folder,
    the locustfiles (scenario and recorder) from the master, the scenarios' helper module from a checkout."""
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != SAMPLES_DIR_ENV and not k.startswith("PERFCI_LOCUST_")}
    env["PERFCI_SEED_USERS"] = str(LOAD_SEED_USERS)
    env["PYTHONPATH"] = str(SCENARIOS_DIR)
    command = [
        sys.executable, "-m", "locust", "-f", "-",
        "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING",
    ]  # fmt: skip
    workers = []
    for index in range(count):
        with (elsewhere / f"worker-{index}.log").open("wb") as log:
            workers.append(subprocess.Popen(command, cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT))
    return workers


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_remote_workers_send_every_sample_to_the_master(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path, master_port: int, stop_all: list[subprocess.Popen[bytes]]
) -> None:
    stop_all += _start_remote_workers(2, master_port, tmp_path / "elsewhere")
    trial = tmp_path / "trial"

    info = run_trial(trial_spec("journeys", users=6), sqlite_service, trial)
    _, samples = read_trial(trial)

    assert info.locust_exit_codes == [0]  # perfci started the master only
    assert [worker.wait(timeout=30) for worker in stop_all] == [0, 0]  # they quit with the master
    remote_parts = {path.name.split("-")[1] for path in (trial / "parts").glob("part-*.csv")}
    assert remote_parts == {"remote0", "remote1"}
    assert len(list((trial / "parts").glob("start-remote*.txt"))) == 2
    # Nothing lost on the way, the last requests (sent after the workers' users stopped) included.
    assert len(samples) == locust_request_count(trial) > 0
    assert samples["start_s"].max() > 4.0 - 0.5  # samples up to the end of the run
    assert sum(e.n for e in info.endpoints.values()) > 0
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["worker-0.log", "worker-1.log"]


def test_a_remote_worker_that_never_comes_fails_the_trial_with_locusts_reason(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path, master_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("perfci.measure.distributed.EXPECT_WORKERS_MAX_WAIT_S", 2)
    with pytest.raises(LoadError, match="the load generator exited with"):
        run_trial(trial_spec("journeys"), sqlite_service, tmp_path)
