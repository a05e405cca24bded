"""The tables of [tool.perfci] that describe the service under test and the scenarios that load it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from perfci.model import Frozen

MAX_USERS = 5000  # per arm: far past what one Locust process drives
MAX_TRIAL_S = 24 * 3600.0
MAX_WORKERS = 64


class ProcessSettings(Frozen):
    """target = "process": how to run the service as a local process (docs/configuration.md)."""

    workdir: str = "."  # relative to the checkout being measured (A/B: the base's worktree)
    python: str = ""  # "" = the interpreter running perfci; else a path, relative to workdir or absolute
    serve: str = ""  # required for this target: must listen on {host}:{port}
    prepare: str = ""  # run once per fresh database, before seeding (migrations)
    seed: str = ""
    database_env: str = ""  # the variable that receives the database URL ("" = the service picks its own)
    database_url: str = ""  # "" = an embedded SQLite file per run; a PostgreSQL server gets a fresh database
    sqlite_url: str = "sqlite:///{path}"  # how the embedded SQLite file is spelled for this service


class ComposeSettings(Frozen):
    """target = "compose": an ordinary compose file; perfci chooses the host ports (docs/containers.md)."""

    file: str = ""  # relative to the project root; "" = no compose target configured
    service: str = "app"
    port: int = Field(default=8000, ge=1, le=65535)  # the measured service's port inside its container
    database_service: str = ""  # PostgreSQL: a fresh database per trial, cloned from a seeded template
    seed: str = ""  # run in the measured service's container against the template database
    database_env: str = ""  # the variable that tells the service which database to use


class ServiceSettings(Frozen):
    readiness_path: str = "/readyz"
    readiness_status: int = Field(default=200, ge=100, le=599)
    url: str = ""
    base_url: str = ""  # target = "url" A/B: the running base service
    candidate_url: str = ""  # and the running candidate
    # {seed_users} in seed commands and PERFCI_SEED_USERS for the scenarios: scenarios that log in as
    # seeded accounts would otherwise fail every login, and the errors would be judged as regressions.
    seed_users: int = Field(default=2000, ge=0, le=1_000_000)
    boot_timeout_s: float = Field(default=90, gt=0, le=MAX_TRIAL_S)
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)  # {workers} in commands, PERFCI_SERVICE_WORKERS
    env: dict[str, str] = Field(default_factory=dict)
    process: ProcessSettings = Field(default_factory=ProcessSettings)
    compose: ComposeSettings = Field(default_factory=ComposeSettings)

    @field_validator("readiness_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/', e.g. /health")
        return value


class ScenarioSettings(Frozen):
    """[tool.perfci.scenarios.NAME]: a plain locustfile and how to drive it."""

    file: str  # relative to the project root
    model: Literal["closed", "open"] = "closed"  # open: a fixed arrival rate (profile.arrival_rate)
    users: int | None = Field(default=None, ge=1, le=MAX_USERS)  # overrides the profile's users
    # The share of the profile's measured window this scenario gets: 2 measures each trial twice as
    # long (more samples where a change matters most), 0.5 half as long.
    weight: float = Field(default=1.0, gt=0, le=10)
