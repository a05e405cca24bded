"""Choosing a target: `auto` falls back to a process where no engine answers; docker.env; url targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.errors import BootError, ConfigError
from perfci.targets.process import process_target
from perfci.targets.select import docker_env, engine_available, resolve_kind
from perfci.targets.url import url_target
from tests.builders import userservice_spec

REPO = Path(__file__).resolve().parents[2]


def test_auto_falls_back_to_process_when_no_engine_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    assert not engine_available(timeout_s=5)
    assert resolve_kind("auto") == "process"


@pytest.mark.parametrize("choice", ["compose", "process", "url"])
def test_an_explicit_choice_is_kept(choice: str) -> None:
    assert resolve_kind(choice) == choice  # type: ignore[arg-type]


def test_docker_env_reads_exports_and_lets_the_environment_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".perfci").mkdir()
    (tmp_path / ".perfci" / "docker.env").write_text(
        "# written by setup-docker.sh\nexport PERFCI_PYTHON_IMAGE=local/python:3.11\n"
        "export PERFCI_POSTGRES_IMAGE='local/postgres:15'\n\n"
    )
    monkeypatch.setenv("PERFCI_PYTHON_IMAGE", "mine:1")
    monkeypatch.delenv("PERFCI_POSTGRES_IMAGE", raising=False)
    assert docker_env(tmp_path) == {"PERFCI_POSTGRES_IMAGE": "local/postgres:15"}


def test_docker_env_rejects_a_line_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / ".perfci").mkdir()
    (tmp_path / ".perfci" / "docker.env").write_text("export A=1 B=2\n")
    with pytest.raises(ConfigError, match="not an `export KEY=VALUE` line"):
        docker_env(tmp_path)


def test_docker_env_is_empty_without_the_file(tmp_path: Path) -> None:
    assert docker_env(tmp_path) == {}


@pytest.mark.integration
def test_url_target_checks_readiness_of_a_running_service(tmp_path: Path) -> None:
    spec = userservice_spec(env={"USERSVC_HASH_TIME_COST": "1"}, boot_timeout_s=60)
    with process_target(spec, tmp_path) as running, url_target(running.base_url + "/", 10) as target:
        assert target.kind == "url"
        assert target.base_url == running.base_url
    with (
        # The service has stopped: its port refuses connections, which fails fast instead of waiting.
        pytest.raises(BootError, match=r"nothing listens at http://127\.0\.0\.1:\d+: the connection was refused"),
        url_target(running.base_url, 0.5),
    ):
        pass


def test_url_target_rejects_a_non_http_address() -> None:
    with pytest.raises(BootError, match="not an http"), url_target("127.0.0.1:8000"):
        pass
