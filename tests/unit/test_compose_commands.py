"""The compose target's command shapes for Compose v1 and v2, the extra CA bundle it passes to builds, and
how it reads a dead app container's exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfci.errors import ConfigError
from perfci.targets.compose import (
    ExitWatch,
    build_args,
    compose_file_args,
    compose_files,
    exit_code_of,
    extra_ca_certs,
    parse_state,
    state_command,
)
from perfci.targets.compose_file import Placement, database_credentials, database_url_of, place
from perfci.targets.select import image_tag, resolve_kind

REPO = Path(__file__).resolve().parents[2]
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("cli", "expected"),
    [
        pytest.param(("docker-compose",), ["build", "--force-rm"], id="v1: no failed-step containers"),
        pytest.param(("docker", "compose"), ["build"], id="v2: BuildKit has no --force-rm"),
    ],
)
def test_build_arguments_per_compose_version(cli: tuple[str, ...], expected: list[str]) -> None:
    assert build_args(cli) == expected


def test_no_extra_ca_configured_is_an_empty_bundle() -> None:
    assert extra_ca_certs({}) == ""
    assert extra_ca_certs({"PERFCI_EXTRA_CA": "  "}) == ""


def test_the_extra_ca_bundle_is_read_from_the_host_not_the_checkout(tmp_path: Path) -> None:
    bundle = tmp_path / "elsewhere" / "ca.pem"
    bundle.parent.mkdir()
    bundle.write_text(PEM * 2, encoding="ascii")
    assert extra_ca_certs({"PERFCI_EXTRA_CA": str(bundle)}) == PEM * 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot be read", id="missing"),
        pytest.param("not a certificate\n", "holds no PEM certificate", id="not PEM"),
    ],
)
def test_a_bad_extra_ca_bundle_is_a_usage_error_with_a_hint(tmp_path: Path, content: str | None, message: str) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content, encoding="ascii")
    with pytest.raises(ConfigError, match=message) as caught:
        extra_ca_certs({"PERFCI_EXTRA_CA": str(bundle)})
    assert caught.value.exit_code == 2
    assert "PERFCI_EXTRA_CA" in str(caught.value)


def test_image_tags_differ_per_arm_and_checkout_and_are_stable(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    assert image_tag(one, "base") != image_tag(one, "candidate")
    assert image_tag(one, "base") != image_tag(other, "base")
    assert image_tag(one, "base") == image_tag(one, "base")
    assert image_tag(one, "base").startswith("perfci-service:base-")


def test_overrides_follow_the_configured_file_relative_to_its_folder(tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    main, cache, absolute = service / "compose.yaml", service / "compose.gha-cache.yaml", tmp_path / "extra.yaml"
    for path in (main, cache, absolute):
        path.write_text("services: {}\n", encoding="utf-8")
    assert compose_files(main, {}) == [main]
    files = compose_files(main, {"PERFCI_COMPOSE_OVERRIDES": f"compose.gha-cache.yaml:{absolute}"})
    assert files == [main, cache, absolute]
    assert compose_file_args(files) == ["-f", str(main), "-f", str(cache), "-f", str(absolute)]


def test_a_missing_override_is_a_usage_error(tmp_path: Path) -> None:
    main = tmp_path / "compose.yaml"
    main.write_text("services: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"PERFCI_COMPOSE_OVERRIDES names .*absent\.yaml") as caught:
        compose_files(main, {"PERFCI_COMPOSE_OVERRIDES": "absent.yaml"})
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "cli",
    [pytest.param(("docker-compose",), id="v1"), pytest.param(("docker", "compose"), id="v2")],
)
def test_the_shipped_compose_files_are_valid_for_each_installed_compose(cli: tuple[str, ...]) -> None:
    """`config` validates and interpolates without an engine; a version that is not installed is skipped."""
    env = {**os.environ, "PERFCI_EXTRA_CA_CERTS": PEM}
    if cli == ("docker", "compose") and os.environ.get("PERFCI_TEST_COMPOSE_V2_CONFIG"):
        env["DOCKER_CONFIG"] = os.environ["PERFCI_TEST_COMPOSE_V2_CONFIG"]
    try:
        probe = subprocess.run([*cli, "version"], env=env, capture_output=True, timeout=30, check=False)
    except OSError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"{' '.join(cli)} is not installed here")
    v2 = cli == ("docker", "compose")
    overrides = {"PERFCI_COMPOSE_OVERRIDES": "compose.gha-cache.yaml"} if v2 else {}  # v1 rejects cache_to
    files = compose_files(REPO / "service" / "compose.yaml", overrides)
    result = subprocess.run(
        [*cli, *compose_file_args(files), "config"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "BEGIN CERTIFICATE" in result.stdout  # the bundle reaches the build arguments
    document = yaml.safe_load(result.stdout)
    # What [tool.perfci.service.compose] names is there: perfci reads the database URL and credentials.
    assert (
        database_url_of(document, "app", "USERSVC_DATABASE_URL", "test") == "postgresql://perfci:perfci@db:5432/perfci"
    )
    assert database_credentials(document, "db", "test") == ("perfci", "perfci", "perfci")
    assert ("type=gha" in result.stdout) is v2


def test_the_state_command_asks_docker_for_status_and_exit_code() -> None:
    assert state_command("abc123") == ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "abc123"]


@pytest.mark.parametrize(
    ("output", "state", "exit_code"),
    [
        pytest.param("running 0\n", ("running", 0), None, id="running"),
        pytest.param("exited 137\n", ("exited", 137), 137, id="killed"),
        pytest.param("exited 0", ("exited", 0), 0, id="exited cleanly mid-trial: still dead"),
        pytest.param("dead 1", ("dead", 1), 1, id="dead"),
        pytest.param("restarting 2", ("restarting", 2), 2, id="restarted by a policy after a death"),
        pytest.param("paused 0", ("paused", 0), None, id="paused"),
        pytest.param("", ("unknown", -1), None, id="inspect failed: not taken for a death"),
        pytest.param("exited x", ("exited", -1), -1, id="unreadable code"),
    ],
)
def test_a_container_state_gives_an_exit_code_only_once_its_process_died(
    output: str, state: tuple[str, int], exit_code: int | None
) -> None:
    assert parse_state(output) == state
    assert exit_code_of(state) == exit_code


def test_the_exit_watch_asks_docker_at_most_once_per_interval_and_forgets_on_restart() -> None:
    answers = iter([("running", 0), ("exited", 137), ("running", 0)])
    asked: list[tuple[str, int]] = []

    def state() -> tuple[str, int]:
        asked.append(next(answers))
        return asked[-1]

    slow = ExitWatch(state, interval_s=3600)
    assert [slow(), slow(), slow()] == [None, None, None]
    assert len(asked) == 1  # a trial polls twice a second: one `docker inspect` per interval
    fast = ExitWatch(state, interval_s=0)
    assert fast() == 137
    assert fast() is None  # asked again: the container runs (once more)
    assert len(asked) == 3


def test_a_restarted_container_is_asked_again_at_once() -> None:
    states = [("exited", 137)]
    watch = ExitWatch(lambda: states[-1], interval_s=3600)
    assert watch() == 137
    states.append(("running", 0))
    assert watch() == 137  # within the interval: what was seen last
    watch.reset()
    assert watch() is None


ORDINARY: dict[str, Any] = {
    "services": {
        "backend": {
            "build": {"context": "/src"},
            "ports": ["8080:8080"],
            "environment": ["DB_URL=postgresql://u:p@db/app"],
        },
        "db": {"image": "postgres:16", "ports": ["5432:5432"], "environment": {"POSTGRES_USER": "u"}},
        "proxy": {"image": "nginx", "ports": ["80:80"], "container_name": "proxy"},
    }
}


def test_an_ordinary_compose_file_gets_perfcis_ports_image_and_environment() -> None:
    placement = Placement("backend", 8080, 41001, "db", 41002, "perfci-service:base-1", {"DB_URL": "x", "K": "a$b"})
    placed = place(ORDINARY, placement)["services"]
    assert placed["backend"]["ports"] == ["127.0.0.1:41001:8080"]  # the fixed 8080:8080 is gone
    assert placed["backend"]["image"] == "perfci-service:base-1"  # built here: one image per arm
    assert placed["backend"]["environment"] == {"DB_URL": "x", "K": "a$$b"}  # compose reads $$ as one $
    assert placed["db"]["ports"] == ["127.0.0.1:41002:5432"]
    assert placed["db"]["image"] == "postgres:16"  # pulled images stay
    assert "ports" not in placed["proxy"]  # two arms would fight over port 80
    assert "container_name" not in placed["proxy"]
    assert ORDINARY["services"]["backend"]["ports"] == ["8080:8080"]  # the input is left as it was


def test_the_database_of_an_ordinary_compose_file_is_read_from_its_environment() -> None:
    assert database_url_of(ORDINARY, "backend", "DB_URL", "f") == "postgresql://u:p@db/app"
    assert database_credentials(ORDINARY, "db", "f") == ("u", "", "u")  # the official image's defaults


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        pytest.param(lambda: database_url_of(ORDINARY, "backend", "DATABASE_URL", "f"), "database_env", id="var"),
        pytest.param(lambda: database_url_of(ORDINARY, "api", "DB_URL", "f"), "service.compose.service", id="svc"),
        pytest.param(lambda: database_credentials(ORDINARY, "pg", "f"), "database_service", id="db"),
    ],
)
def test_a_compose_setting_that_matches_nothing_in_the_file_is_a_usage_error(call: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as caught:
        call()  # type: ignore[operator]
    assert caught.value.hint


def test_auto_means_process_when_no_compose_file_is_configured() -> None:
    # Asked before any engine: a project without [tool.perfci.service.compose] never builds containers.
    assert resolve_kind("auto", compose_configured=False) == "process"
    assert resolve_kind("compose", compose_configured=False) == "compose"  # asked for: its own error later
