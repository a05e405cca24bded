"""Which target to boot (`auto`: containers where an engine answers, else a local process) and booting it."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from perfci.config import Config, TargetChoice
from perfci.errors import ConfigError
from perfci.model import Arm
from perfci.targets.base import Target, TargetKind
from perfci.targets.compose import ComposeSpec, compose_command, compose_target
from perfci.targets.process import ProcessSpec, process_target
from perfci.targets.url import url_target

ENGINE_TIMEOUT_S = 5.0
# Written by scripts/setup-docker.sh: the local base images on a machine without a registry.
DOCKER_ENV_FILE = Path(".perfci/docker.env")


@dataclass(frozen=True)
class BootRequest:
    """One arm's boot: which checkout's service to run and where to keep its logs."""

    arm: Arm
    checkout: Path  # the project root of the code to boot (A/B: the base's worktree)
    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)  # USERSVC_* on top of the configured env
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


def resolve_kind(choice: TargetChoice) -> TargetKind:
    """`auto` -> compose when an engine answers and a compose CLI exists, else process."""
    if choice != "auto":
        return choice
    return "compose" if engine_available() and compose_command() is not None else "process"


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
                "delete the file and run scripts/setup-docker.sh again",
            )
        key, value = words[0].split("=", 1)
        if key not in os.environ:
            found[key] = value
    return found


@contextmanager
def boot_target(config: Config, request: BootRequest) -> Iterator[Target]:
    """Boot the configured target for one arm; the pipeline's only entry into this package."""
    settings = config.service
    kind = resolve_kind(config.target)
    service_dir = request.checkout / settings.service_dir
    env = {**settings.env, **request.extra_env}
    if kind == "url":
        with url_target(settings.url, settings.boot_timeout_s, settings.seed_users) as target:
            yield target
    elif kind == "compose":
        spec = ComposeSpec(
            compose_file=config.project_root / settings.compose_file,
            service_dir=service_dir,
            image_tag=f"perfci-userservice:{request.arm}",
            env=env,
            compose_env=docker_env(config.project_root),
            seed_users=settings.seed_users,
            boot_timeout_s=settings.boot_timeout_s,
            workers=settings.workers,
        )
        with compose_target(spec, request.workdir) as target:
            yield target
    else:
        process_spec = ProcessSpec(
            service_dir=service_dir,
            database_url=settings.database_url or None,
            env=env,
            seed_users=settings.seed_users,
            boot_timeout_s=settings.boot_timeout_s,
            workers=settings.workers,
            sqlite_template=request.sqlite_template,
        )
        with process_target(process_spec, request.workdir) as target:
            yield target
