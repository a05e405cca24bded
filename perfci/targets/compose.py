"""The service and its PostgreSQL as containers, through `docker compose` (v2) or `docker-compose` (v1).

One compose project per arm lives for the whole run. Its image is built once, PostgreSQL starts once and
holds a seeded template database; a fresh service for a trial costs a container restart and a
`CREATE DATABASE ... TEMPLATE` (well under a second for a seeded test database), not a new stack.
The compose file is the project's own (perfci/targets/compose_file.py says what perfci changes in it).
Over 400 lines because one project's life (build, start, seed the template, restart per trial, watch for
exits, tear down) is one class whose steps share the containers' state.
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
from typing import Any
from urllib.parse import quote

import psycopg
import yaml
from psycopg import sql

from perfci.errors import BootError, ConfigError
from perfci.targets.base import Target
from perfci.targets.commands import command_words
from perfci.targets.compose_file import (
    Placement,
    database_credentials,
    database_url_of,
    place,
    service_table,
    with_database_name,
)
from perfci.targets.health import Readiness, boot_failure, free_port, not_ready_hint, wait_until_ready

HOST = "127.0.0.1"
TEMPLATE_DATABASE = "perfci_template"  # seeded once per arm; never connected to while trials run
TRIAL_DATABASE = "perfci_trial"  # the app's database: recreated from the template before each start
DOWN_TIMEOUT_S = 120.0
STATE_CHECK_INTERVAL_S = 1.0  # `docker inspect` while the app boots: a process per call, CPU the boot needs
# A PEM bundle trusted while the service image is built (TLS-inspecting proxies). Read from this host, not
# from the checkout, so that every arm of an A/B (a base worktree has no untracked files) gets it.
EXTRA_CA_ENV = "PERFCI_EXTRA_CA"
EXTRA_CA_BUILD_ARG_ENV = "PERFCI_EXTRA_CA_CERTS"  # its text, for a compose file to pass on as a build arg
WORKERS_ENV = "PERFCI_SERVICE_WORKERS"  # service.workers, for a compose file that wants it
RESOLVED_FILE = "compose.perfci.yaml"  # the file perfci runs, in the arm's work directory
# Compose files applied after the configured one (`:`-separated, relative to its folder), e.g.
# compose.gha-cache.yaml for a CI layer cache.
OVERRIDES_ENV = "PERFCI_COMPOSE_OVERRIDES"

# Two arms boot in parallel, but their builds take turns: the second then finds the first's layers
# (the dependencies, mostly) in the cache instead of installing them a second time at the same moment.
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ComposeSpec:
    """How to boot one compose target ([tool.perfci.service.compose])."""

    compose_file: Path  # the arm's checkout's, so that its build contexts are the arm's code
    # Where relative PERFCI_COMPOSE_OVERRIDES are found: the current checkout's compose folder, so that a
    # base older than an override file still gets it. None: the compose file's own folder.
    overrides_dir: Path | None = None
    service: str = "app"  # the measured service
    port: int = 8000  # its port inside the container
    database_service: str = ""  # PostgreSQL; "" = none managed by perfci
    seed: str = ""  # run in the measured service's container against the template database
    database_env: str = ""  # the variable that tells the service which database to use
    readiness: Readiness = field(default_factory=Readiness)
    image_tag: str = "perfci-service:local"  # one per arm, so the arms never share an image
    env: Mapping[str, str] = field(default_factory=dict)  # [tool.perfci.service] env for the measured service
    compose_env: Mapping[str, str] = field(default_factory=dict)  # PERFCI_* for compose (base images...)
    seed_users: int = 0
    boot_timeout_s: float = 90.0
    build_timeout_s: float = 1200.0  # a first build installs the service's dependencies
    workers: int = 1
    declared_in: str = "[tool.perfci.service.compose]"  # where the settings come from, for messages


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
    """`build` arguments for the stack's images: v1's classic builder leaves a failed step's container
    behind unless told otherwise; v2 (BuildKit) has no such option."""
    return ["build", *(["--force-rm"] if tuple(cli) == ("docker-compose",) else [])]


def compose_file_args(files: Sequence[Path]) -> list[str]:
    """`-f FILE` for each file, in order: later files override earlier ones (v1 and v2 alike)."""
    return [arg for path in files for arg in ("-f", str(path.resolve()))]


def compose_files(compose_file: Path, env: Mapping[str, str], overrides_dir: Path | None = None) -> list[Path]:
    """The configured compose file, then those PERFCI_COMPOSE_OVERRIDES names (relative to `overrides_dir`,
    by default the compose file's folder)."""
    folder = overrides_dir or compose_file.parent
    overrides = [Path(p.strip()).expanduser() for p in env.get(OVERRIDES_ENV, "").split(":") if p.strip()]
    files = [compose_file, *(p if p.is_absolute() else folder / p for p in overrides)]
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
            "point it at a PEM file of CA certificates (docs/containers.md), or unset it",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            f"{EXTRA_CA_ENV}={path_text} holds no PEM certificate",
            "give a file of '-----BEGIN CERTIFICATE-----' blocks, or unset it",
        )
    return text


def resolved_compose_file(
    cli: Sequence[str], files: Sequence[Path], project: str, env: Mapping[str, str], log_path: Path
) -> dict[str, Any]:
    """The compose files merged and interpolated by compose itself (`config`), as a mapping."""
    text = _logged(
        [*cli, *compose_file_args(files), "-p", project, "config"], env, log_path, 60,
        "reading the compose file", "compose could not read the file; its message is in the log",
    )  # fmt: skip
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ConfigError(f"{files[0]} defines no services", "service.compose.file must name a compose file")
    return document


def cli_or_fail() -> tuple[str, ...]:
    cli = compose_command()
    if cli is None:
        raise BootError(
            "no compose CLI: neither `docker compose` nor `docker-compose` answers",
            "install Docker Compose (docs/containers.md), or use --target process",
        )
    return cli


class _Compose:
    """One compose project: every call logged to the work directory, every failure a BootError."""

    def __init__(self, compose_files: Sequence[Path], workdir: Path, env: Mapping[str, str], project: str) -> None:
        self.cli = cli_or_fail()
        self.base = [*self.cli, *compose_file_args(compose_files), "-p", project]
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
        env = {**os.environ, **spec.compose_env}
        self.env = {**env, EXTRA_CA_BUILD_ARG_ENV: extra_ca_certs(env), WORKERS_ENV: str(spec.workers)}
        project = f"perfci-{secrets.token_hex(5)}"
        log_path = workdir / "compose.log"
        document = resolved_compose_file(
            cli_or_fail(), compose_files(spec.compose_file, env, spec.overrides_dir), project, self.env, log_path
        )
        self.has_build = "build" in service_table(document, spec.service, "service.compose.service", spec.declared_in)
        self.credentials = ("", "", "")
        self.app_database_url = ""
        placed_env = dict(spec.env)
        if spec.database_service:
            self.credentials = database_credentials(document, spec.database_service, spec.declared_in)
            self.app_database_url = database_url_of(document, spec.service, spec.database_env, spec.declared_in)
            placed_env[spec.database_env] = with_database_name(self.app_database_url, TRIAL_DATABASE)
        placement = Placement(
            spec.service, spec.port, self.service_port, spec.database_service, self.db_port, spec.image_tag, placed_env
        )
        resolved = workdir / RESOLVED_FILE
        resolved.write_text(yaml.safe_dump(place(document, placement), sort_keys=False), encoding="utf-8")
        self.compose = _Compose([resolved], workdir, self.env, project)
        self.base_url = f"http://{HOST}:{self.service_port}"
        self.roles = {spec.service: "service", spec.database_service: "database"}
        self.app_id = ""
        self.exit_watch = ExitWatch(lambda: _container_state(self.app_id, self.env))
        self.target: Target | None = None
        self._up = False

    # -- the run's life cycle -----------------------------------------------------------------------------

    def start(self) -> Target:
        """Build, start PostgreSQL, seed the template, start the stack on a clone; the ready target."""
        spec = self.spec
        with _BUILD_LOCK:
            self.compose.run(
                build_args(self.compose.cli), spec.build_timeout_s, f"building the images ({spec.image_tag})",
                "the build output is in the log; behind a TLS-intercepting proxy set PERFCI_EXTRA_CA to the proxy's "
                "CA bundle (docs/containers.md)",
            )  # fmt: skip
        self._up = True  # from here on something may be running: close() takes it down
        if spec.database_service:
            self.compose.run(
                ["up", "-d", "--no-build", spec.database_service], spec.boot_timeout_s + 60, "starting PostgreSQL",
                "the containers' output is in containers.log beside this log; raise boot_timeout_s if slow",
            )  # fmt: skip
            self._wait_for_database()
            self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DATABASE)))
            self._seed()
            self._fresh_database()
        self.compose.run(
            ["up", "-d", "--no-build"], spec.boot_timeout_s + 60, "starting the containers",
            "the containers' output is in containers.log beside this log; raise boot_timeout_s if slow",
        )  # fmt: skip
        (self.app_id,) = self.compose.run(["ps", "-q", spec.service], 30, "finding the service container", "").split()
        self._wait_for_app()
        if not spec.database_service:
            self._seed()  # no database perfci manages: seeded once, in the running service
        ids = self.compose.run(["ps", "-q"], 30, "listing the containers", "").split()
        self.target = self._target(ids)
        return self.target

    def _seed(self) -> None:
        spec = self.spec
        if not spec.seed.strip() or not spec.seed_users:
            return
        values = {"seed_users": str(spec.seed_users), "workers": str(spec.workers)}
        command = command_words(spec.seed, values, "service.compose.seed", spec.declared_in)
        hint = "the seed command's output is in the log; raise boot_timeout_s if it is just slow"
        what = f"seeding {spec.seed_users} users (service.compose.seed)"
        if spec.database_service:
            template_url = with_database_name(self.app_database_url, TEMPLATE_DATABASE)
            self.compose.run(
                ["run", "--rm", "--no-deps", "-T", "-e", f"{spec.database_env}={template_url}", spec.service,
                 *command], spec.boot_timeout_s, what, hint,
            )  # fmt: skip
        else:
            self.compose.run(["exec", "-T", spec.service, *command], spec.boot_timeout_s, what, hint)

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
        if self.spec.database_service:
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

    def _admin_url(self, database: str = "") -> str:
        user, password, default_database = self.credentials
        return f"postgresql://{quote(user)}:{quote(password)}@{HOST}:{self.db_port}/{database or default_database}"

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

        if wait_until_ready(self.base_url, self.spec.boot_timeout_s, alive, self.spec.readiness):
            return
        containers_log = self.workdir / "containers.log"
        self.compose.save_logs(containers_log)
        status, code = _container_state(self.app_id, self.env)
        if status in ("exited", "dead"):
            raise boot_failure(
                f"the service container exited with code {code} while starting",
                containers_log,
                "its output says why; a bad value in [tool.perfci.service.env] is a common cause",
            )
        raise boot_failure(
            f"service not ready at {self.base_url} after {self.spec.boot_timeout_s:g} s: "
            f"service.readiness_path never gave {self.spec.readiness.describe()}",
            containers_log,
            f"{not_ready_hint(self.spec.readiness)}; compose's own output is in {self.compose.log_path}",
        )

    def _target(self, ids: Sequence[str]) -> Target:
        found = _inspect(ids, self.env)
        # The monitor names a container by its role, so that a report groups by role, not by container.
        roles = {cid: self.roles.get(service, service) for cid, (service, _) in zip(ids, found, strict=True)}
        cli_name = "docker compose v2" if self.compose.cli == ("docker", "compose") else "docker-compose v1"
        image = self.spec.image_tag if self.has_build else "its image"
        database = "PostgreSQL" if self.spec.database_service else "no database"
        return Target(
            kind="compose",
            base_url=self.base_url,
            log_paths=(self.compose.log_path, self.workdir / "containers.log"),
            containers=tuple(ids),
            container_roles=roles,
            database_url=self._admin_url(TRIAL_DATABASE) if self.spec.database_service else None,
            image_ids=dict(found),
            seed_users=self.spec.seed_users,
            description=f"compose ({cli_name}, {image}, {database})",
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
    """Build, start with free host ports, seed, wait for readiness; yield; keep logs and `down -v` always."""
    with compose_service(spec, workdir) as service:
        assert service.target is not None
        yield service.target
