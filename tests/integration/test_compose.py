"""The container path for real: build the service image, start it with PostgreSQL, use it, tear it down.

Skips where no container engine answers, unless PERFCI_REQUIRE_DOCKER=1 (CI runs scripts/setup-docker.sh
first and must not silently skip the container path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest

from perfci.cli import main
from perfci.config import load_config
from perfci.errors import BootError, ConfigError, ExitCode, TargetExitedError
from perfci.measure.load import Progress, TrialSpec, run_trial
from perfci.measure.monitor import ResourceMonitor
from perfci.model import Comparison
from perfci.rundir import read_trial_info
from perfci.targets.compose import ComposeSpec, compose_command, compose_service, compose_target
from perfci.targets.select import BootRequest, boot_target, docker_env, engine_available, image_tag
from tests.builders import git_project

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}


@pytest.fixture(scope="module", autouse=True)
def _engine() -> None:
    missing = None
    if not engine_available():
        missing = "no container engine answers `docker info`"
    elif compose_command() is None:
        missing = "neither `docker compose` nor `docker-compose` is installed"
    if missing and os.environ.get("PERFCI_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{missing}, and PERFCI_REQUIRE_DOCKER=1: run scripts/setup-docker.sh")
    if missing:
        pytest.skip(f"{missing} (run scripts/setup-docker.sh, or set PERFCI_REQUIRE_DOCKER=1 to fail)")


Spec = Callable[..., TrialSpec]


def _spec(**changes: object) -> ComposeSpec:
    defaults: dict[str, object] = {
        "compose_file": REPO / "service" / "compose.yaml",
        "service": "app",
        "port": 8000,
        "database_service": "db",
        "seed": "userservice seed --count {seed_users}",
        "database_env": "USERSVC_DATABASE_URL",
        "image_tag": "perfci-service:test",
        "env": FAST_HASH,
        "compose_env": docker_env(REPO),
        "seed_users": 2,
        "boot_timeout_s": 120,
    }
    return ComposeSpec(**{**defaults, **changes})  # type: ignore[arg-type]


def _existing(container_ids: tuple[str, ...]) -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, check=True, timeout=30
    )
    return [cid for cid in result.stdout.split() if cid in container_ids]


def test_stack_builds_serves_logins_and_is_removed(tmp_path: Path) -> None:
    with compose_target(_spec(), tmp_path) as target:
        assert target.kind == "compose"
        assert len(target.containers) == 2
        assert set(target.image_ids) == {"app", "db"}
        assert all(image.startswith("sha256:") for image in target.image_ids.values())
        assert httpx.get(f"{target.base_url}/readyz", timeout=5).status_code == 200

        user = {"email": "compose-user@perfci.test", "password": "a-long-password-1", "display_name": "C"}
        register = httpx.post(f"{target.base_url}/auth/register", json=user, timeout=30)
        assert register.status_code == 201, register.text
        login = httpx.post(
            f"{target.base_url}/auth/login",
            json={"email": user["email"], "password": user["password"]},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        assert login.json()["access_token"]
        seeded = httpx.post(
            f"{target.base_url}/auth/login",
            json={"email": "seed-000001@perfci.test", "password": "perfci-seed-password"},
            timeout=30,
        )
        assert seeded.status_code == 200, seeded.text

        # perfci reads PostgreSQL's counters through the published port.
        assert target.database_url is not None
        with psycopg.connect(target.database_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
        assert row is not None
        assert row[0] > 0
        assert _existing(target.containers) != []
    assert _existing(target.containers) == []
    logs = (tmp_path / "containers.log").read_text()
    assert "Uvicorn running on" in logs  # the service's own output, kept after `down -v`
    assert "database system is ready" in logs


def _leftover_containers(workdir: Path) -> str:
    project_line = next(line for line in (workdir / "compose.log").read_text().splitlines() if " -p " in line)
    project = project_line.split(" -p ", 1)[1].split()[0]
    leftover = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return leftover.stdout.strip()


def test_a_crash_at_start_is_a_boot_error_with_the_container_output(tmp_path: Path) -> None:
    spec = _spec(env={"USERSVC_HASH_TIME_COST": "not-a-number"}, seed_users=0, boot_timeout_s=60)
    started = time.monotonic()
    with (
        pytest.raises(BootError, match="the service container exited with code") as caught,
        compose_target(spec, tmp_path),
    ):
        pass
    assert time.monotonic() - started < 60  # found by the container's state, not by waiting out the timeout
    message = str(caught.value)
    assert str(tmp_path / "containers.log") in message
    assert "hash_time_cost" in message.lower()  # the service's own explanation, in the tail shown
    assert _leftover_containers(tmp_path) == ""


def test_a_service_that_never_gets_ready_in_time_is_a_boot_error_and_is_removed(tmp_path: Path) -> None:
    # The service's own regression knob fails every readiness check: up, but never ready.
    spec = _spec(env={"USERSVC_KNOB_ERRORS": "GET /readyz=1"}, seed_users=0, boot_timeout_s=5)
    never_ready = r"not ready at http://127\.0\.0\.1:\d+ after 5 s: service\.readiness_path never gave GET /readyz"
    with pytest.raises(BootError, match=never_ready) as caught, compose_target(spec, tmp_path):
        pass
    assert "raise boot_timeout_s" in caught.value.hint
    assert _leftover_containers(tmp_path) == ""


def test_auto_target_boots_the_stack_from_the_configuration(tmp_path: Path) -> None:
    config = load_config(
        REPO / "pyproject.toml",
        environ={},
        overrides={"target": "auto", "service.seed_users": 1, "service.env": FAST_HASH},
    )
    request = BootRequest(arm="base", checkout=REPO, workdir=tmp_path)
    with boot_target(config, request) as target:
        assert target.kind == "compose"  # an engine answers here, so auto means containers
        assert "perfci-service:base" in target.description
        seeded = httpx.post(
            f"{target.base_url}/auth/login",
            json={"email": "seed-000000@perfci.test", "password": "perfci-seed-password"},
            timeout=30,
        )
        assert seeded.status_code == 200, seeded.text
    assert _existing(target.containers) == []


def _started_at(container_id: str) -> str:
    result = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", container_id],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return result.stdout.strip()


def test_a_restart_is_a_new_app_process_on_a_fresh_clone_of_the_seeded_database(tmp_path: Path) -> None:
    with compose_service(_spec(seed_users=3), tmp_path) as service:
        target = service.target
        assert target is not None
        roles = target.container_roles
        assert sorted(roles.values()) == ["database", "service"]
        (db_id,) = [cid for cid, role in roles.items() if role == "database"]
        (app_id,) = [cid for cid, role in roles.items() if role == "service"]
        db_started, app_started = _started_at(db_id), _started_at(app_id)
        user = {"email": "left-behind@perfci.test", "password": "a-long-password-1", "display_name": "L"}
        assert httpx.post(f"{target.base_url}/auth/register", json=user, timeout=30).status_code == 201

        again = service.restart()

        assert again.base_url == target.base_url
        assert _started_at(db_id) == db_started  # PostgreSQL kept running
        assert _started_at(app_id) != app_started  # a new service process
        # The trial's writes are gone; the seeded users are there again.
        login = {"email": user["email"], "password": user["password"]}
        assert httpx.post(f"{again.base_url}/auth/login", json=login, timeout=30).status_code == 401
        seeded = {"email": "seed-000002@perfci.test", "password": "perfci-seed-password"}
        assert httpx.post(f"{again.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
        assert again.database_url is not None
        with psycopg.connect(again.database_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT count(*) FROM users").fetchone()
        assert row == (3,)

        # The containers' processes are visible here: sampled by role like a local process, no `docker stats`.
        monitor = ResourceMonitor(again)
        assert monitor.containers == []
        monitor.start()
        for _ in range(20):
            httpx.get(f"{again.base_url}/readyz", timeout=5)
        time.sleep(1.2)
        monitor.stop()
        frame = monitor.frame()
        assert set(frame["source"]) == {"service", "database", "locust"}
        assert (frame[frame["source"] == "service"]["rss_mb"] > 10).all()

        # A container that dies is seen as a dead service, as a process target's exit is: a trial ends at
        # once with exit 3 instead of judging refused connections. It is restarted all the same.
        assert again.exit_code is not None
        assert again.exit_code() is None
        subprocess.run(["docker", "kill", app_id], capture_output=True, check=True, timeout=30)
        deadline = time.monotonic() + 10
        while again.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert again.exit_code() == 137  # SIGKILL
        revived = service.restart()
        assert httpx.get(f"{revived.base_url}/readyz", timeout=5).status_code == 200
        assert revived.exit_code is not None
        assert revived.exit_code() is None  # the new process runs: the death seen before is forgotten
    assert _existing(target.containers) == []


def test_a_container_killed_mid_trial_ends_the_trial_as_a_dead_service(tmp_path: Path, trial_spec: Spec) -> None:
    """As with a process: the trial ends within moments of the death, on disk, with exit 3, not at its end
    with the refused connections judged."""
    killed_at: list[float] = []
    with compose_target(_spec(seed_users=8), tmp_path / "stack") as target:
        (app_id,) = [cid for cid, role in target.container_roles.items() if role == "service"]

        def kill_when_warm(progress: Progress) -> None:
            if not killed_at and progress.elapsed_s >= 2.0:
                subprocess.run(["docker", "kill", app_id], capture_output=True, check=True, timeout=30)
                killed_at.append(progress.elapsed_s)

        trial = tmp_path / "trial"
        spec = trial_spec("journeys", duration_s=20.0, extra_env={"PERFCI_SEED_USERS": "8"})
        with pytest.raises(TargetExitedError, match=r"exited during trial 1 of scenario journeys .*exit code 137") as e:
            run_trial(spec, target, trial, kill_when_warm)

    assert e.value.exit_code == ExitCode.INFRASTRUCTURE
    assert killed_at
    info = read_trial_info(trial)
    assert any("the service exited during this trial (exit code 137)" in flag for flag in info.flags)
    samples = pd.read_parquet(trial / "samples.parquet")
    assert (samples["status"] > 0).any()  # before the kill the service answered
    # Ended within moments (an inspect a second, a poll every half second), far before the 21-s trial's end.
    assert samples["start_s"].max() < killed_at[0] + 4.0


def test_a_missing_extra_ca_bundle_is_a_config_error_before_anything_runs(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    spec = _spec(compose_env={**docker_env(REPO), "PERFCI_EXTRA_CA": str(missing)})
    with (
        pytest.raises(ConfigError, match=r"PERFCI_EXTRA_CA=.*absent\.pem cannot be read"),
        compose_target(spec, tmp_path),
    ):
        pass
    assert not (tmp_path / "compose.log").exists()


@pytest.fixture
def compose_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Compose v2 through a private docker config folder whose cli-plugins hold it (docs/containers.md)."""
    config = os.environ.get("PERFCI_TEST_COMPOSE_V2_CONFIG")
    if not config:
        pytest.skip("PERFCI_TEST_COMPOSE_V2_CONFIG is not set: no Compose v2 plugin to test with")
    monkeypatch.setenv("DOCKER_CONFIG", config)
    compose_command.cache_clear()
    try:
        if compose_command() != ("docker", "compose"):
            pytest.fail(f"`docker compose version` does not answer with DOCKER_CONFIG={config}")
        yield
    finally:
        compose_command.cache_clear()


@pytest.mark.usefixtures("compose_v2")
def test_compose_v2_builds_seeds_restarts_and_removes_the_stack(tmp_path: Path) -> None:
    with compose_service(_spec(seed_users=2), tmp_path) as service:
        target = service.target
        assert target is not None
        assert "docker compose v2" in target.description
        assert sorted(target.container_roles.values()) == ["database", "service"]
        again = service.restart()
        seeded = {"email": "seed-000001@perfci.test", "password": "perfci-seed-password"}
        assert httpx.post(f"{again.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
    assert _existing(target.containers) == []
    assert "docker compose -f" in (tmp_path / "compose.log").read_text()


AB_PYPROJECT = """\
[tool.perfci]
target = "compose"
profile = "tiny"
default_scenarios = ["journeys"]
runs_dir = "runs"
baselines_dir = "baselines"

[tool.perfci.service]
seed_users = 50
env = { USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }

[tool.perfci.service.compose]
file = "service/compose.yaml"
service = "app"
port = 8000
database_service = "db"
seed = "userservice seed --count {seed_users}"
database_env = "USERSVC_DATABASE_URL"

[tool.perfci.scenarios.journeys]
file = "scenarios/journeys.py"

[tool.perfci.profiles.tiny]
trials = 2
duration_s = 2
warmup_s = 1
users = 4
spawn_rate = 50
fresh_service = true
ab_schedule = "concurrent"
"""


def test_an_ab_run_builds_both_arms_with_the_extra_ca_from_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base arm is built from a clean git worktree: the CA bundle must reach its build from the host."""
    settings = docker_env(REPO)
    if not settings.get("PERFCI_EXTRA_CA") and not os.environ.get("PERFCI_EXTRA_CA"):
        pytest.skip("no extra CA bundle on this machine (scripts/setup-docker.sh found none): nothing to prove")
    root = git_project(tmp_path / "project", AB_PYPROJECT, gitignore="runs/\n.perfci/\n", whole_service=True)
    for key, value in settings.items():  # base images and the bundle's path, as .perfci/docker.env gives them
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(root)
    try:
        code = main(["run", "--config", str(root / "pyproject.toml"), "--ab", "HEAD", "--no-progress"])
    finally:
        tags = [image_tag(root, arm) for arm in ("base", "candidate")]
        subprocess.run(["docker", "rmi", "--no-prune", *tags], capture_output=True, timeout=60, check=False)
    assert code in (0, 1)  # measured and compared; a build or boot failure would be 3
    (run_dir,) = (d for d in (root / "runs").iterdir() if d.is_dir())
    for arm in ("base", "candidate"):
        log = (run_dir / "targets" / arm / "compose.log").read_text(encoding="utf-8")
        assert f"# building the images ({image_tag(root, arm)})" in log
    comparison = Comparison.model_validate_json((run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert comparison.mode == "ab"
    assert not (root / "service" / "docker" / "extra-ca").exists()  # nothing copied into the checkout


def test_a_second_signal_during_the_parallel_first_boot_leaves_no_container(tmp_path: Path) -> None:
    # A cancelled job gets SIGINT, then SIGTERM: the second signal arrives while the arms' boots, running in
    # threads, are still starting containers. Those containers must be removed like any others.
    root = git_project(tmp_path / "project", AB_PYPROJECT, gitignore="runs/\n.perfci/\n", whole_service=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")} | docker_env(REPO)
    log = root / "perfci.log"
    with log.open("wb") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "perfci.cli", "run", "--ab", "HEAD", "--no-progress"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while not any("up -d --no-build db" in p.read_text() for p in root.glob("runs/*/targets/*/compose.log")):
                assert run.poll() is None, log.read_text(encoding="utf-8")
                assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
                time.sleep(0.1)
            run.send_signal(signal.SIGINT)
            time.sleep(0.5)
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=180)
        finally:
            if run.poll() is None:
                run.kill()
            tags = [image_tag(root, arm) for arm in ("base", "candidate")]
            subprocess.run(["docker", "rmi", "--no-prune", *tags], capture_output=True, timeout=60, check=False)
    text = log.read_text(encoding="utf-8")
    arms = sorted((root / "runs").glob("*/targets/*/compose.log"))
    assert len(arms) == 2, text
    for compose_log in arms:
        assert _leftover_containers(compose_log.parent) == "", compose_log.read_text()
    assert code == ExitCode.INFRASTRUCTURE, text
    assert "already stopping" in text


# An ordinary compose file as a team might have one: the service under another name and port, a database
# service with its own credentials, a third service, fixed host ports and a container name.
BUILD_THE_USER_SERVICE = """\
    build:
      context: {service_dir}
      network: ${{PERFCI_BUILD_NETWORK:-default}}
      args:
        BASE_IMAGE: ${{PERFCI_PYTHON_IMAGE:-python:3.11-slim}}
        EXTRA_CA_CERTS: ${{PERFCI_EXTRA_CA_CERTS:-}}
"""
ORDINARY_COMPOSE = """\
services:
  backend:
{build}    command: ["userservice", "serve", "--host", "0.0.0.0", "--port", "9000"]
    environment:
      USERSVC_DATABASE_URL: postgresql://notes:notes-pw@postgres:5432/notes
      USERSVC_JWT_SECRET: ordinary-compose-file-not-a-secret-0123456789
    ports: ["9000:9000"]
    depends_on: [postgres]
  postgres:
    image: ${PERFCI_POSTGRES_IMAGE:-postgres:16}
    environment:
      POSTGRES_USER: notes
      POSTGRES_PASSWORD: notes-pw
      POSTGRES_DB: notes
    ports: ["5432:5432"]
  proxy:
    image: ${PERFCI_PYTHON_IMAGE:-python:3.11-slim}
    container_name: notes-proxy
    command: ["python3", "-m", "http.server", "8081"]
    ports: ["8081:8081"]
"""


def test_an_ordinary_compose_file_with_fixed_ports_is_measured_on_perfcis_own_ports(tmp_path: Path) -> None:
    compose_file = tmp_path / "app" / "docker-compose.yml"
    compose_file.parent.mkdir()
    build = BUILD_THE_USER_SERVICE.format(service_dir=REPO / "service")
    compose_file.write_text(ORDINARY_COMPOSE.replace("{build}", build), encoding="utf-8")
    spec = _spec(compose_file=compose_file, service="backend", port=9000, database_service="postgres", seed_users=2)
    with compose_service(spec, tmp_path / "run") as service:
        target = service.target
        assert target is not None
        assert not target.base_url.endswith(":9000")  # a free port of perfci's choosing, on 127.0.0.1
        assert target.base_url.startswith("http://127.0.0.1:")
        assert sorted(target.container_roles.values()) == ["database", "proxy", "service"]
        seeded = {"email": "seed-000001@perfci.test", "password": "perfci-seed-password"}
        assert httpx.post(f"{target.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
        assert target.database_url is not None
        assert "notes:notes-pw@127.0.0.1:" in target.database_url  # the file's own credentials
        again = service.restart()  # a fresh clone of the seeded template, as with the project's own file
        assert httpx.post(f"{again.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
    assert _existing(target.containers) == []


# No database service: the service keeps its own (SQLite inside its container); perfci seeds it once.
NO_DATABASE_COMPOSE = """\
services:
  api:
{build}    command: ["userservice", "serve", "--host", "0.0.0.0", "--port", "8000"]
    environment:
      USERSVC_DATABASE_URL: sqlite+aiosqlite:////tmp/users.sqlite3
    ports: ["8000:8000"]
"""


def test_a_compose_file_without_a_database_service_is_seeded_once_in_the_running_service(tmp_path: Path) -> None:
    compose_file = tmp_path / "compose.yaml"
    build = BUILD_THE_USER_SERVICE.format(service_dir=REPO / "service")
    compose_file.write_text(NO_DATABASE_COMPOSE.replace("{build}", build), encoding="utf-8")
    spec = _spec(compose_file=compose_file, service="api", database_service="", database_env="", seed_users=2)
    with compose_service(spec, tmp_path / "run") as service:
        target = service.target
        assert target is not None
        assert target.database_url is None  # nothing perfci could read counters from
        assert "no database" in target.description
        seeded = {"email": "seed-000001@perfci.test", "password": "perfci-seed-password"}
        assert httpx.post(f"{target.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
        again = service.restart()  # the same container again: its data stays
        assert httpx.post(f"{again.base_url}/auth/login", json=seeded, timeout=30).status_code == 200
    assert _existing(target.containers) == []
    assert "exec -T api userservice seed --count 2" in (tmp_path / "run" / "compose.log").read_text()
