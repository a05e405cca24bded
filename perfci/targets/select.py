"""Which target to boot (`auto`: containers where an engine answers, else a local process) and booting it."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from perfci.config import Config, TargetChoice
from perfci.errors import ConfigError
from perfci.model import Arm
from perfci.targets.base import Target, TargetKind
from perfci.targets.compose import ComposeSpec, compose_command, compose_service
from perfci.targets.health import Readiness
from perfci.targets.process import ProcessSpec, process_target
from perfci.targets.url import url_target

ENGINE_TIMEOUT_S = 5.0
# Local settings for compose (e.g. base images on a machine without a registry; docs/containers.md).
DOCKER_ENV_FILE = Path(".perfci/docker.env")


@dataclass(frozen=True)
class BootRequest:
    """One arm's boot: which checkout's service to run and where to keep its logs."""

    arm: Arm
    checkout: Path  # the project root of the code to boot (A/B: the base's worktree)
    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)  # on top of the configured service env
    sqlite_template: Path | None = None  # process target on SQLite: reuse this seeded database (see ProcessSpec)


def engine_available(timeout_s: float = ENGINE_TIMEOUT_S) -> bool:
    """True when a container engine answers `docker info` within `timeout_s` (a dead socket hangs)."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def resolve_kind(choice: TargetChoice, compose_configured: bool = True) -> TargetKind:
    """`auto` -> compose when a compose file is configured, an engine answers and a compose CLI exists;
    else process."""
    if choice != "auto":
        return choice
    usable = compose_configured and engine_available() and compose_command() is not None
    return "compose" if usable else "process"


def target_kind(config: Config) -> TargetKind:
    return resolve_kind(config.target, bool(config.service.compose.file))


def docker_env(project_root: Path) -> dict[str, str]:
    """Settings from `.perfci/docker.env` (`export KEY=VALUE` lines) that the environment does not set."""
    path = project_root / DOCKER_ENV_FILE
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line.removeprefix("export "))
        if len(words) != 1 or "=" not in words[0]:
            raise ConfigError(
                f"cannot read {path}: {raw!r} is not an `export KEY=VALUE` line",
                "fix or delete the file (docs/containers.md describes it)",
            )
        key, value = words[0].split("=", 1)
        if key not in os.environ:
            found[key] = value
    return found


@dataclass
class BootedService:
    """An arm's running service: its target now, and how to get a fresh one for the next trial."""

    target: Target
    restart: Callable[[], Target]


def image_tag(project_root: Path, arm: Arm) -> str:
    """The arm's image tag: one per project checkout and arm, so that runs of other checkouts on the same
    engine never retag an image between its build and its start, and a rerun here reuses the tag."""
    checkout = hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:8]
    return f"perfci-service:{arm}-{checkout}"


def readiness(config: Config) -> Readiness:
    return Readiness(config.service.readiness_path, config.service.readiness_status)


def _compose_spec(config: Config, request: BootRequest) -> ComposeSpec:
    settings = config.service
    compose = settings.compose
    # The arm's own compose file, so that its build contexts are the arm's code; the current one when an
    # older base predates it.
    arm_file = request.checkout / compose.file
    return ComposeSpec(
        compose_file=arm_file if arm_file.is_file() else config.project_root / compose.file,
        overrides_dir=(config.project_root / compose.file).parent,
        service=compose.service,
        port=compose.port,
        database_service=compose.database_service,
        seed=compose.seed,
        database_env=compose.database_env,
        readiness=readiness(config),
        image_tag=image_tag(config.project_root, request.arm),
        env={**settings.env, **request.extra_env},
        compose_env=docker_env(config.project_root),
        seed_users=settings.seed_users,
        boot_timeout_s=settings.boot_timeout_s,
        workers=settings.workers,
        declared_in=f"[tool.perfci.service.compose] in {config.config_file}",
    )


def process_spec(config: Config, checkout: Path, **changes: object) -> ProcessSpec:
    """The process target of `config` for the code in `checkout` (A/B: the base's worktree)."""
    settings = config.service
    process = settings.process
    spec = ProcessSpec(
        workdir=checkout / process.workdir,
        serve=process.serve,
        prepare=process.prepare,
        seed=process.seed,
        python=process.python,
        database_env=process.database_env,
        database_url=process.database_url or None,
        sqlite_url=process.sqlite_url,
        readiness=readiness(config),
        env=settings.env,
        seed_users=settings.seed_users,
        boot_timeout_s=settings.boot_timeout_s,
        workers=settings.workers,
        declared_in=f"[tool.perfci.service.process] in {config.config_file}",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def url_of(config: Config, arm: Arm) -> str:
    """The running service an arm measures: base_url for the base, else candidate_url or url."""
    service = config.service
    return service.base_url if arm == "base" else service.candidate_url or service.url


@contextmanager
def boot_service(config: Config, request: BootRequest) -> Iterator[BootedService]:
    """Boot the configured target for one arm, kept for a whole run; the pipeline's entry into this package.

    A restart gives the next trial a fresh service: for compose a new app process on a new clone of the
    seeded database (PostgreSQL and the image stay); for a process a new process (on a copy of the seeded
    SQLite file, or a new PostgreSQL database); a url target cannot be restarted and stays as it is.
    """
    if target_kind(config) == "compose":
        with compose_service(_compose_spec(config, request), request.workdir) as service:
            assert service.target is not None
            yield BootedService(service.target, service.restart)
        return
    stack = ExitStack()
    try:

        def restart() -> Target:
            nonlocal stack
            stack.close()
            stack = ExitStack()
            return stack.enter_context(boot_target(config, request))

        yield BootedService(stack.enter_context(boot_target(config, request)), restart)
    finally:
        stack.close()


@contextmanager
def boot_target(config: Config, request: BootRequest) -> Iterator[Target]:
    """Boot the configured target for one arm once (no restarts): reports, stress runs, tests."""
    settings = config.service
    kind = target_kind(config)
    if kind == "url":
        url = url_of(config, request.arm)
        with url_target(url, settings.boot_timeout_s, settings.seed_users, readiness(config)) as target:
            yield target
    elif kind == "compose":
        with compose_service(_compose_spec(config, request), request.workdir) as service:
            assert service.target is not None
            yield service.target
    else:
        spec = process_spec(
            config,
            request.checkout,
            env={**settings.env, **request.extra_env},
            sqlite_template=request.sqlite_template,
        )
        with process_target(spec, request.workdir) as target:
            yield target
