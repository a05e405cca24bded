"""The service and PostgreSQL as containers, through `docker compose` (v2) or `docker-compose` (v1).

One compose project per arm lives for the whole run. Its image is built once, PostgreSQL starts once and
holds a seeded template database; a fresh service for a trial costs an app container restart and a
`CREATE DATABASE ... TEMPLATE` (well under a second for a seeded test database), not a new stack.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import psycopg
from psycopg import sql

from perfci.errors import BootError, ConfigError
from perfci.targets.base import Target
from perfci.targets.health import boot_failure, free_port, wait_until_ready

HOST = "127.0.0.1"
SERVICE = "app"  # service names in service/compose.yaml
DATABASE = "db"
DB_USER_PASSWORD_DB = ("perfci", "perfci", "perfci")
TEMPLATE_DATABASE = "perfci_template"  # seeded once per arm; never connected to while trials run
TRIAL_DATABASE = "perfci_trial"  # the app's database: recreated from the template before each start
DOWN_TIMEOUT_S = 120.0
STATE_CHECK_INTERVAL_S = 1.0  # `docker inspect` while the app boots: a process per call, CPU the boot needs
# A PEM bundle trusted while the service image is built (TLS-inspecting proxies). Read from this host, not
# from the checkout, so that every arm of an A/B (a base worktree has no untracked files) gets it.
EXTRA_CA_ENV = "PERFCI_EXTRA_CA"
EXTRA_CA_BUILD_ARG_ENV = "PERFCI_EXTRA_CA_CERTS"  # what compose.yaml passes on as the EXTRA_CA_CERTS build arg
# Compose files applied after the configured one (`:`-separated, relative to its folder), e.g.
# compose.gha-cache.yaml for a CI layer cache.
OVERRIDES_ENV = "PERFCI_COMPOSE_OVERRIDES"
CONTAINER_ROLES = {SERVICE: "service", DATABASE: "database"}

# Two arms boot in parallel, but their builds take turns: the second then finds the first's layers
# (the dependencies, mostly) in the cache instead of installing them a second time at the same moment.
_BUILD_LOCK = threading.Lock()


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


def build_args(cli: Sequence[str]) -> list[str]:
    """`build` arguments for the app image: v1's classic builder leaves a failed step's container behind
    unless told otherwise; v2 (BuildKit) has no such option."""
    return ["build", *(["--force-rm"] if tuple(cli) == ("docker-compose",) else []), SERVICE]


def compose_file_args(files: Sequence[Path]) -> list[str]:
    """`-f FILE` for each file, in order: later files override earlier ones (v1 and v2 alike)."""
    return [arg for path in files for arg in ("-f", str(path.resolve()))]


def compose_files(compose_file: Path, env: Mapping[str, str]) -> list[Path]:
    """The configured compose file, then those PERFCI_COMPOSE_OVERRIDES names (relative to its folder)."""
    overrides = [Path(p.strip()).expanduser() for p in env.get(OVERRIDES_ENV, "").split(":") if p.strip()]
    files = [compose_file, *(p if p.is_absolute() else compose_file.parent / p for p in overrides)]
    for path in files[1:]:
        if not path.is_file():
            raise ConfigError(
                f"{OVERRIDES_ENV} names {path}, which is not a file",
                "give compose files separated by ':', relative to the folder of the configured compose file",
            )
    return files


def extra_ca_certs(env: Mapping[str, str]) -> str:
    """The PEM text of the bundle named by PERFCI_EXTRA_CA, or "" when none is configured."""
    path_text = env.get(EXTRA_CA_ENV, "").strip()
    if not path_text:
        return ""
    path = Path(path_text).expanduser()
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{EXTRA_CA_ENV}={path_text} cannot be read: {exc.__class__.__name__}",
            "point it at a PEM file of CA certificates (scripts/setup-docker.sh writes .perfci/extra-ca.pem), "
            "or unset it",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            f"{EXTRA_CA_ENV}={path_text} holds no PEM certificate",
            "give a file of '-----BEGIN CERTIFICATE-----' blocks, or unset it",
        )
    return text


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

    def __init__(self, compose_files: Sequence[Path], workdir: Path, env: Mapping[str, str], project: str) -> None:
        cli = compose_command()
        if cli is None:
            raise BootError(
                "no compose CLI: neither `docker compose` nor `docker-compose` answers",
                "run scripts/setup-docker.sh, install Docker Compose, or use --target process",
            )
        self.cli = cli
        self.base = [*cli, *compose_file_args(compose_files), "-p", project]
        self.env = dict(env)
        self.log_path = workdir / "compose.log"

    def run(
        self, args: Sequence[str], timeout_s: float, what: str, hint: str, env: Mapping[str, str] | None = None
    ) -> str:
        return _logged([*self.base, *args], {**self.env, **(env or {})}, self.log_path, timeout_s, what, hint)

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


def _logged(
    command: Sequence[str], env: Mapping[str, str], log_path: Path, timeout_s: float, what: str, hint: str
) -> str:
    """Run a command with its line and stderr in the log; stdout returned; failure or timeout a BootError."""
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        started = time.monotonic()
        try:
            result = subprocess.run(
                command, env=env, stdout=subprocess.PIPE, stderr=log, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise boot_failure(f"{what} took longer than {timeout_s:g} s", log_path, hint) from None
        log.write(result.stdout)
        log.write(f"# {what}: {time.monotonic() - started:.2f} s\n".encode())  # where a slow boot spends it
    if result.returncode != 0:
        raise boot_failure(f"{what} failed (exit code {result.returncode})", log_path, hint)
    return result.stdout.decode(errors="replace")


def state_command(container_id: str) -> list[str]:
    return ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container_id]


def parse_state(output: str) -> tuple[str, int]:
    """(status, exit code) from `state_command`'s output; ("unknown", -1) when it said nothing usable."""
    status, _, code = output.strip().partition(" ")
    return (status or "unknown", int(code) if code.lstrip("-").isdigit() else -1)


def _container_state(container_id: str, env: Mapping[str, str]) -> tuple[str, int]:
    """(status, exit code) of a container, e.g. ("running", 0) or ("exited", 2)."""
    result = subprocess.run(
        state_command(container_id), env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return parse_state(result.stdout)


# A container in one of these states has lost its process: "restarting" is a restart policy's answer to a
# death. An unknown state (inspect failed) is not taken for a death: the refused connections that follow a
# removed container are caught by the trial itself.
DEAD_STATES = ("exited", "dead", "restarting")


def exit_code_of(state: tuple[str, int]) -> int | None:
    """The container's exit code once its process has died, None while it runs (or while unknown)."""
    status, code = state
    return code if status in DEAD_STATES else None


class ExitWatch:
    """`Target.exit_code` of a container: its exit code once dead, else None, asking docker at most once per
    `interval_s` (a trial polls twice a second; a `docker inspect` is a process, CPU the load needs)."""

    def __init__(self, state: Callable[[], tuple[str, int]], interval_s: float = STATE_CHECK_INTERVAL_S) -> None:
        self.state, self.interval_s = state, interval_s
        self._checked_at: float | None = None
        self._code: int | None = None

    def __call__(self) -> int | None:
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at >= self.interval_s:
            self._checked_at = now
            self._code = exit_code_of(self.state())
        return self._code

    def reset(self) -> None:
        """The container was started again: what was seen before says nothing about the new process."""
        self._checked_at, self._code = None, None


def _inspect(ids: Sequence[str], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(compose service name, image id) of each container, in the order of `ids`."""
    if not ids:
        return []
    template = '{{index .Config.Labels "com.docker.compose.service"}} {{.Image}}'
    result = subprocess.run(
        ["docker", "inspect", "-f", template, *ids], env=env, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    rows = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
    return [(service, image) for service, image in rows]


class ComposeService:
    """One arm's compose project for a whole run: `start()` once, `restart()` per fresh trial, `close()`.

    PostgreSQL stays up; the app container keeps its ports and configuration and only its process is new.
    Before each start of the app its database is dropped and cloned from the seeded template, so every
    trial begins from the same data as the first, as with a new stack, at a fraction of the cost.
    """

    def __init__(self, spec: ComposeSpec, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.spec, self.workdir = spec, workdir
        self.service_port = free_port(HOST)
        self.db_port = free_port(HOST)
        while self.db_port == self.service_port:
            self.db_port = free_port(HOST)
        env_file = workdir / "service.env"
        _write_service_env(spec.env, env_file)
        env = {**os.environ, **spec.compose_env}
        self.env = {
            **env,
            EXTRA_CA_BUILD_ARG_ENV: extra_ca_certs(env),
            "PERFCI_SERVICE_IMAGE": spec.image_tag,
            "PERFCI_SERVICE_CONTEXT": str(spec.service_dir.resolve()),
            "PERFCI_SERVICE_PORT": str(self.service_port),
            "PERFCI_DB_PORT": str(self.db_port),
            "PERFCI_DATABASE_NAME": TRIAL_DATABASE,
            "PERFCI_SERVICE_ENV_FILE": str(env_file.resolve()),
            "PERFCI_SERVICE_WORKERS": str(spec.workers),
            "PERFCI_JWT_SECRET": secrets.token_hex(32),
        }
        files = compose_files(spec.compose_file, env)
        self.compose = _Compose(files, workdir, self.env, f"perfci-{secrets.token_hex(5)}")
        self.base_url = f"http://{HOST}:{self.service_port}"
        self.app_id = ""
        self.exit_watch = ExitWatch(lambda: _container_state(self.app_id, self.env))
        self.target: Target | None = None
        self._up = False

    # -- the run's life cycle -----------------------------------------------------------------------------

    def start(self) -> Target:
        """Build the image, start PostgreSQL, seed the template, start the app on a clone; the ready target."""
        spec = self.spec
        with _BUILD_LOCK:
            self.compose.run(
                build_args(self.compose.cli), spec.build_timeout_s, f"building the service image {spec.image_tag}",
                "the build output is in the log; behind a TLS-intercepting proxy set PERFCI_EXTRA_CA to the proxy's "
                "CA bundle (scripts/setup-docker.sh does)",
            )  # fmt: skip
        self._up = True  # from here on something may be running: close() takes it down
        self.compose.run(
            ["up", "-d", "--no-build", DATABASE], spec.boot_timeout_s + 60, "starting PostgreSQL",
            "the containers' output is in containers.log beside this log; raise boot_timeout_s if slow",
        )  # fmt: skip
        self._wait_for_database()
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DATABASE)))
        if spec.seed_users:
            self.compose.run(
                ["run", "--rm", "--no-deps", "-T", SERVICE, "userservice", "seed", "--count", str(spec.seed_users)],
                spec.boot_timeout_s, f"seeding {spec.seed_users} users",
                "raise boot_timeout_s if it is just slow; the seed command's output is in the log",
                env={"PERFCI_DATABASE_NAME": TEMPLATE_DATABASE},
            )  # fmt: skip
        self._fresh_database()
        self.compose.run(
            ["up", "-d", "--no-build", SERVICE], spec.boot_timeout_s + 60, "starting the service container",
            "the containers' output is in containers.log beside this log; raise boot_timeout_s if slow",
        )  # fmt: skip
        (self.app_id,) = self.compose.run(["ps", "-q", SERVICE], 30, "finding the service container", "").split()
        self._wait_for_app()
        ids = self.compose.run(["ps", "-q"], 30, "listing the containers", "").split()
        self.target = self._target(ids)
        return self.target

    def restart(self) -> Target:
        """A new service process on a new clone of the seeded database; PostgreSQL and the container stay."""
        assert self.target is not None, "start() first"
        hint = "the container's output is in containers.log beside this log"
        # Killed, not stopped: its graceful shutdown is not measured, and `docker stop` spent a second on it.
        try:
            _logged(["docker", "kill", self.app_id], self.env, self.compose.log_path, 60,
                    "stopping the service container", hint)  # fmt: skip
        except BootError:
            if _container_state(self.app_id, self.env)[0] not in ("exited", "dead"):
                raise  # a service that died during the trial needs no killing; anything else is a failure
        self._fresh_database()
        _logged(["docker", "start", self.app_id], self.env, self.compose.log_path, 60,
                "starting the service container again", hint)  # fmt: skip
        self.exit_watch.reset()
        self._wait_for_app()
        return self.target

    def close(self) -> None:
        if self._up:
            self.compose.down(self.workdir)

    # -- helpers ------------------------------------------------------------------------------------------

    def _admin_url(self, database: str = DB_USER_PASSWORD_DB[2]) -> str:
        user, password, _ = DB_USER_PASSWORD_DB
        return f"postgresql://{user}:{password}@{HOST}:{self.db_port}/{database}"

    def _admin(self, *statements: sql.Composed) -> None:
        try:
            with psycopg.connect(self._admin_url(), autocommit=True, connect_timeout=10) as conn:
                for statement in statements:
                    conn.execute(statement)
        except psycopg.Error as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BootError(
                f"PostgreSQL in the {self.spec.image_tag} stack refused a database command: {first_line}",
                f"its output is in containers.log in {self.workdir}",
            ) from exc

    def _fresh_database(self) -> None:
        """The app's database as a clone of the seeded template (the app is not running: nothing holds it)."""
        trial, template = sql.Identifier(TRIAL_DATABASE), sql.Identifier(TEMPLATE_DATABASE)
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(trial),
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(trial, template),
        )

    def _wait_for_database(self) -> None:
        deadline = time.monotonic() + self.spec.boot_timeout_s
        while True:
            try:
                with psycopg.connect(self._admin_url(), connect_timeout=2):
                    return
            except psycopg.Error:
                pass  # not accepting connections yet: the normal state of a starting server
            if time.monotonic() >= deadline:
                containers_log = self.workdir / "containers.log"
                self.compose.save_logs(containers_log)
                raise boot_failure(
                    f"PostgreSQL did not accept connections on port {self.db_port} within "
                    f"{self.spec.boot_timeout_s:g} s",
                    containers_log,
                    "raise boot_timeout_s if it is just slow; check PERFCI_POSTGRES_IMAGE",
                )
            time.sleep(0.2)

    def _wait_for_app(self) -> None:
        checked = [time.monotonic()]  # the container just started: the first look can wait

        def alive() -> bool:
            if time.monotonic() - checked[0] < STATE_CHECK_INTERVAL_S:
                return True
            checked[0] = time.monotonic()
            return _container_state(self.app_id, self.env)[0] not in ("exited", "dead")

        if wait_until_ready(self.base_url, self.spec.boot_timeout_s, alive):
            return
        containers_log = self.workdir / "containers.log"
        self.compose.save_logs(containers_log)
        status, code = _container_state(self.app_id, self.env)
        if status in ("exited", "dead"):
            raise boot_failure(
                f"the service container exited with code {code} while starting",
                containers_log,
                "its output says why; a bad USERSVC_* value in [tool.perfci.service] env is a common cause",
            )
        raise boot_failure(
            f"service not healthy at {self.base_url}/readyz after {self.spec.boot_timeout_s:g} s",
            containers_log,
            f"raise boot_timeout_s if it is just slow; compose's own output is in {self.compose.log_path}",
        )

    def _target(self, ids: Sequence[str]) -> Target:
        found = _inspect(ids, self.env)
        # The monitor names a container by its role, so that a report groups by role, not by container.
        roles = {cid: CONTAINER_ROLES.get(service, service) for cid, (service, _) in zip(ids, found, strict=True)}
        user, password, _ = DB_USER_PASSWORD_DB
        cli_name = "docker compose v2" if self.compose.cli == ("docker", "compose") else "docker-compose v1"
        return Target(
            kind="compose",
            base_url=self.base_url,
            log_paths=(self.compose.log_path, self.workdir / "containers.log"),
            containers=tuple(ids),
            container_roles=roles,
            database_url=f"postgresql://{user}:{password}@{HOST}:{self.db_port}/{TRIAL_DATABASE}",
            image_ids=dict(found),
            seed_users=self.spec.seed_users,
            description=f"compose ({cli_name}, {self.spec.image_tag}, PostgreSQL)",
            # A container that dies mid-trial is a dead service, as for the process target: exit 3.
            exit_code=self.exit_watch,
        )


@contextmanager
def compose_service(spec: ComposeSpec, workdir: Path) -> Iterator[ComposeService]:
    """A started compose service (see ComposeService); always taken down, its logs kept, on the way out."""
    service = ComposeService(spec, workdir)
    try:
        service.start()
        yield service
    finally:
        service.close()


@contextmanager
def compose_target(spec: ComposeSpec, workdir: Path) -> Iterator[Target]:
    """Build, start with free host ports, wait for `/readyz`, seed; yield; keep logs and `down -v` always."""
    with compose_service(spec, workdir) as service:
        assert service.target is not None
        yield service.target
