"""The process target against the real user service: SQLite, PostgreSQL, and each way a boot fails."""

from __future__ import annotations

import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest

from perfci.config import load_config
from perfci.errors import BootError, ExitCode
from perfci.targets.process import process_target
from perfci.targets.select import BootRequest, boot_target
from tests.builders import userservice_spec

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SERVICE_DIR = REPO / "service"
# Cheap hashing keeps seeding and logins fast; the service's own tests cover the real cost.
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}
SEED_PASSWORD = "perfci-seed-password"
NOT_HEALTHY = r"not ready at http://127\.0\.0\.1:\d+ after 0\.05 s: service\.readiness_path never gave GET /readyz"


def _postgres_url() -> str:
    url = os.environ.get("PERFCI_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PERFCI_TEST_DATABASE_URL is not set: no PostgreSQL to test against")
    return url


def _login(base_url: str, index: int) -> httpx.Response:
    email = f"seed-{index:06d}@perfci.test"
    return httpx.post(f"{base_url}/auth/login", json={"email": email, "password": SEED_PASSWORD}, timeout=30)


def _refuses_connections(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _databases(server_url: str) -> set[str]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_sqlite_boot_serves_seeded_users_and_teardown_stops_it(tmp_path: Path) -> None:
    spec = userservice_spec(env=FAST_HASH, seed_users=3, boot_timeout_s=60)
    with process_target(spec, tmp_path) as target:
        assert target.kind == "process"
        assert target.database_url is None
        assert "SQLite" in target.description
        assert httpx.get(f"{target.base_url}/readyz", timeout=5).status_code == 200
        login = _login(target.base_url, 2)
        assert login.status_code == 200, login.text
        assert login.json()["access_token"]
        assert _login(target.base_url, 3).status_code == 401  # only three were seeded: 0, 1, 2
        (pid,) = target.pids
        assert _pid_alive(pid)
    assert not _pid_alive(pid)
    assert _refuses_connections(target.base_url)
    assert (tmp_path / "service.sqlite3").is_file()
    log = tmp_path / "service.log"
    assert target.log_paths == (log,)
    assert "serve" in log.read_text()  # kept after teardown


def test_a_service_booted_in_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    """A/B arms boot in threads that end at once; the parent-death signal must not follow them."""
    spec = userservice_spec(env=FAST_HASH, seed_users=1, boot_timeout_s=60)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
        target = pool.submit(stack.enter_context, process_target(spec, tmp_path)).result()
        pool.shutdown(wait=True)  # the boot thread has ended
        time.sleep(0.5)
        (pid,) = target.pids
        assert _pid_alive(pid)
        assert httpx.get(f"{target.base_url}/readyz", timeout=5).status_code == 200
        assert target.exit_code is not None
        assert target.exit_code() is None
    assert not _pid_alive(pid)


def test_a_restart_from_the_sqlite_template_skips_seeding_and_forgets_the_last_run(tmp_path: Path) -> None:
    template = tmp_path / "seeded.sqlite3"
    spec = userservice_spec(env=FAST_HASH, seed_users=3, boot_timeout_s=60, sqlite_template=template)
    account = {"email": "new@perfci.test", "password": "a-long-password", "display_name": "New"}
    with process_target(spec, tmp_path) as first:
        assert httpx.post(f"{first.base_url}/auth/register", json=account, timeout=30).status_code == 201
    assert template.is_file()
    with process_target(spec, tmp_path) as second:
        assert second.pids != first.pids
        assert _login(second.base_url, 2).status_code == 200  # the seeded users are there
        credentials = {"email": account["email"], "password": account["password"]}
        login = httpx.post(f"{second.base_url}/auth/login", json=credentials, timeout=30)
        assert login.status_code == 401  # the account registered under load in the first run is gone
    log = (tmp_path / "service.log").read_text()
    assert log.count("userservice seed") == 1
    assert log.count("userservice serve") == 2


@pytest.mark.postgres
def test_postgres_boot_gets_its_own_database_and_drops_it(tmp_path: Path) -> None:
    server_url = _postgres_url()
    spec = userservice_spec(database_url=server_url, env=FAST_HASH, seed_users=2, boot_timeout_s=60)
    with process_target(spec, tmp_path / "a") as first, process_target(spec, tmp_path / "b") as second:
        assert first.database_url is not None
        assert second.database_url is not None
        names = {url.rsplit("/", 1)[1] for url in (first.database_url, second.database_url)}
        assert len(names) == 2  # A/B arms never share data
        assert names <= _databases(server_url)
        assert _login(first.base_url, 1).status_code == 200
        assert _login(second.base_url, 1).status_code == 200
        # The target's URL is one perfci can read counters through.
        with psycopg.connect(first.database_url) as conn:
            row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
        assert row is not None
        assert row[0] > 0
    assert not names & _databases(server_url)
    assert _refuses_connections(first.base_url)


def test_port_taken_is_a_boot_error_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        port = occupier.getsockname()[1]
        spec = userservice_spec(port=port, env=FAST_HASH, boot_timeout_s=30)
        with pytest.raises(BootError, match=rf"port {port} .* is taken") as caught, process_target(spec, tmp_path):
            pass
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE
    assert str(port) in caught.value.hint


def test_crash_at_start_shows_the_log_tail(tmp_path: Path) -> None:
    spec = userservice_spec(env={"USERSVC_HASH_TIME_COST": "not-a-number"}, boot_timeout_s=60)
    with pytest.raises(BootError) as caught, process_target(spec, tmp_path):
        pass
    message = str(caught.value)
    log = tmp_path / "service.log"
    assert message.splitlines()[0].startswith("the service exited with code")
    assert str(log) in message
    # The tail is the service's own explanation of the bad value.
    assert "hash_time_cost" in message.lower()
    assert log.read_text().strip().splitlines()[-1] in message
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE


def test_never_healthy_in_time_is_a_boot_error_and_leaves_nothing_running(tmp_path: Path) -> None:
    spec = userservice_spec(env=FAST_HASH, boot_timeout_s=0.05)
    with (
        pytest.raises(BootError, match=NOT_HEALTHY) as caught,
        process_target(spec, tmp_path),
    ):
        pass
    assert "raise boot_timeout_s" in caught.value.hint
    assert str(tmp_path / "service.log") in str(caught.value)
    match = re.search(r"http://127\.0\.0\.1:\d+", str(caught.value))
    assert match is not None
    assert _refuses_connections(match.group(0))


def test_boot_target_wires_the_configuration_to_a_process(tmp_path: Path) -> None:
    config = load_config(
        REPO / "pyproject.toml",
        environ={},
        overrides={"target": "process", "service.seed_users": 1, "service.env": FAST_HASH},
    )
    request = BootRequest(arm="candidate", checkout=REPO, workdir=tmp_path)
    with boot_target(config, request) as target:
        assert target.kind == "process"
        assert target.seed_users == 1
        assert _login(target.base_url, 0).status_code == 200
    assert _refuses_connections(target.base_url)
