"""The service and PostgreSQL as containers, through `docker compose` (v2) or `docker-compose` (v1)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from perfci.errors import BootError
from perfci.targets.base import Target
from perfci.targets.health import boot_failure, free_port, wait_until_ready

HOST = "127.0.0.1"
SERVICE = "app"  # service names in service/compose.yaml
DATABASE = "db"
DB_USER_PASSWORD_DB = ("perfci", "perfci", "perfci")
DOWN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ComposeSpec:
    """How to boot one compose target."""

    compose_file: Path  # always the current checkout's: an older base may predate it
    service_dir: Path  # the build context: the checkout's `service/` (A/B: the base's worktree)
    image_tag: str = "perfci-userservice:local"  # one per arm, so the arms never share an image
    env: Mapping[str, str] = field(default_factory=dict)  # USERSVC_* overrides for the service
    compose_env: Mapping[str, str] = field(default_factory=dict)  # PERFCI_* for compose (base images...)
    seed_users: int = 0
    boot_timeout_s: float = 90.0
    build_timeout_s: float = 1200.0  # a first build installs the service's dependencies
    workers: int = 1


@cache
def compose_command() -> tuple[str, ...] | None:
    """`docker compose` when the v2 plugin answers, else `docker-compose` (v1), else None."""
    for candidate in (("docker", "compose"), ("docker-compose",)):
        try:
            result = subprocess.run([*candidate, "version"], capture_output=True, timeout=15, check=False, text=True)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return candidate
    return None


def _write_service_env(env: Mapping[str, str], path: Path) -> None:
    for key, value in env.items():
        if "\n" in value or "\n" in key or "=" in key:
            raise BootError(
                f"service setting {key!r} cannot pass to a container (newline or '=' in it)",
                "remove the newline or '=' from the value in [tool.perfci.service] env",
            )
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8")


class _Compose:
    """One compose project: every call logged to the work directory, every failure a BootError."""

    def __init__(self, spec: ComposeSpec, workdir: Path, env: Mapping[str, str], project: str) -> None:
        cli = compose_command()
        if cli is None:
            raise BootError(
                "no compose CLI: neither `docker compose` nor `docker-compose` answers",
                "run scripts/setup-docker.sh, install Docker Compose, or use --target process",
            )
        self.cli = cli
        self.base = [*cli, "-f", str(spec.compose_file.resolve()), "-p", project]
        self.env = dict(env)
        self.log_path = workdir / "compose.log"

    def run(self, args: Sequence[str], timeout_s: float, what: str, hint: str) -> str:
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join([*self.base, *args])}\n".encode())
            log.flush()
            try:
                result = subprocess.run(
                    [*self.base, *args], env=self.env, stdout=subprocess.PIPE, stderr=log,
                    timeout=timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise boot_failure(f"{what} took longer than {timeout_s:g} s", self.log_path, hint) from None
            log.write(result.stdout)
        if result.returncode != 0:
            raise boot_failure(f"{what} failed (exit code {result.returncode})", self.log_path, hint)
        return result.stdout.decode(errors="replace")

    def save_logs(self, path: Path) -> None:
        with path.open("wb") as out:
            subprocess.run(
                [*self.base, "logs", "--no-color", "--timestamps"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, timeout=60, check=False,
            )  # fmt: skip

    def down(self, workdir: Path) -> None:
        """Keep the containers' logs, then remove containers, network and volumes, whatever happened."""
        self.save_logs(workdir / "containers.log")
        with self.log_path.open("ab") as log:
            subprocess.run(
                [*self.base, "down", "-v", "--remove-orphans", "--timeout", "10"], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, timeout=DOWN_TIMEOUT_S, check=False,
            )  # fmt: skip


def _container_state(container_id: str, env: Mapping[str, str]) -> tuple[str, int]:
    """(status, exit code) of a container, e.g. ("running", 0) or ("exited", 2)."""
    result = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container_id], env=env,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    status, _, code = result.stdout.strip().partition(" ")
    return (status or "unknown", int(code) if code.lstrip("-").isdigit() else -1)


def _inspect(ids: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """Compose service name -> image id of each running container."""
    if not ids:
        return {}
    template = '{{index .Config.Labels "com.docker.compose.service"}} {{.Image}}'
    result = subprocess.run(
        ["docker", "inspect", "-f", template, *ids], env=env, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


@contextmanager
def compose_target(spec: ComposeSpec, workdir: Path) -> Iterator[Target]:
    """Build, start with free host ports, wait for `/readyz`, seed; yield; keep logs and `down -v` always."""
    workdir.mkdir(parents=True, exist_ok=True)
    service_port, db_port = free_port(HOST), free_port(HOST)
    while db_port == service_port:
        db_port = free_port(HOST)
    env_file = workdir / "service.env"
    _write_service_env(spec.env, env_file)
    project = f"perfci-{secrets.token_hex(5)}"
    env = {
        **os.environ,
        **spec.compose_env,
        "PERFCI_SERVICE_IMAGE": spec.image_tag,
        "PERFCI_SERVICE_CONTEXT": str(spec.service_dir.resolve()),
        "PERFCI_SERVICE_PORT": str(service_port),
        "PERFCI_DB_PORT": str(db_port),
        "PERFCI_SERVICE_ENV_FILE": str(env_file.resolve()),
        "PERFCI_SERVICE_WORKERS": str(spec.workers),
        "PERFCI_JWT_SECRET": secrets.token_hex(32),
    }
    compose = _Compose(spec, workdir, env, project)
    base_url = f"http://{HOST}:{service_port}"
    with ExitStack() as stack:
        # v1's classic builder leaves a failed step's container behind unless told otherwise.
        force_rm = ["--force-rm"] if compose.cli == ("docker-compose",) else []
        compose.run(
            ["build", *force_rm, SERVICE], spec.build_timeout_s, f"building the service image {spec.image_tag}",
            "the build output is in the log; behind a TLS-intercepting proxy run scripts/setup-docker.sh "
            "(it passes the machine's CA certificates into the build)",
        )  # fmt: skip
        stack.callback(compose.down, workdir)  # from here on something may be running
        compose.run(
            ["up", "-d", "--no-build"], spec.boot_timeout_s + 60, "starting the containers",
            "the containers' output is in containers.log beside this log; raise boot_timeout_s if slow",
        )  # fmt: skip
        (app_id,) = compose.run(["ps", "-q", SERVICE], 30, "finding the service container", "").split()
        if not wait_until_ready(
            base_url, spec.boot_timeout_s, lambda: _container_state(app_id, env)[0] not in ("exited", "dead")
        ):
            containers_log = workdir / "containers.log"
            compose.save_logs(containers_log)
            status, code = _container_state(app_id, env)
            if status in ("exited", "dead"):
                raise boot_failure(
                    f"the service container exited with code {code} while starting",
                    containers_log,
                    "its output says why; a bad USERSVC_* value in [tool.perfci.service] env is a common cause",
                )
            raise boot_failure(
                f"service not healthy at {base_url}/readyz after {spec.boot_timeout_s:g} s",
                containers_log,
                f"raise boot_timeout_s if it is just slow; compose's own output is in {compose.log_path}",
            )
        if spec.seed_users:
            compose.run(
                ["exec", "-T", SERVICE, "userservice", "seed", "--count", str(spec.seed_users)],
                spec.boot_timeout_s, f"seeding {spec.seed_users} users",
                "raise boot_timeout_s if it is just slow; the seed command's output is in the log",
            )  # fmt: skip
        ids = compose.run(["ps", "-q"], 30, "listing the containers", "").split()
        user, password, database = DB_USER_PASSWORD_DB
        cli_name = "docker compose v2" if compose.cli == ("docker", "compose") else "docker-compose v1"
        yield Target(
            kind="compose",
            base_url=base_url,
            log_paths=(compose.log_path, workdir / "containers.log"),
            containers=tuple(ids),
            database_url=f"postgresql://{user}:{password}@{HOST}:{db_port}/{database}",
            image_ids=_inspect(ids, env),
            seed_users=spec.seed_users,
            description=f"compose ({cli_name}, {spec.image_tag}, PostgreSQL)",
        )
