"""The service's configuration: `USERSVC_*` environment variables, validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from userservice.knobs import parse_knobs

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./userservice.sqlite3"
# Used only in dev mode; a fixed value so that every worker of one dev server accepts the others' tokens.
DEV_JWT_SECRET = "userservice-dev-mode-insecure-secret-do-not-deploy"  # noqa: S105  # public on purpose: dev mode only
MIN_SECRET_LENGTH = 32  # HS256 wants a key at least as long as its 256-bit output

PositiveInt = Annotated[int, Field(ge=1)]


def normalise_database_url(url: str) -> str:
    """Plain `postgresql://` and `postgres://` URLs get the asyncpg driver; `sqlite://` gets aiosqlite."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("must look like postgresql://user@host:5432/db or sqlite+aiosqlite:///path.sqlite3")
    base = scheme.split("+", 1)[0]
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"unsupported database {scheme!r}: use PostgreSQL (postgresql://...) or SQLite (sqlite:///...)")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    if not url.startswith("sqlite"):
        return None
    location = url.partition("://")[2].removeprefix("/").split("?", 1)[0]
    return Path(location) if location and location != ":memory:" else None


class Settings(BaseSettings):
    """Every setting, its default and its limits. Read from `USERSVC_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="USERSVC_", frozen=True, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    jwt_secret: str = ""
    dev: bool = False
    access_token_ttl_s: PositiveInt = 900
    refresh_token_ttl_s: PositiveInt = 14 * 24 * 3600
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 "low memory" profile).
    hash_time_cost: Annotated[int, Field(ge=1, le=100)] = 3
    hash_memory_kib: Annotated[int, Field(ge=8, le=4 * 1024 * 1024)] = 65536
    hash_parallelism: Annotated[int, Field(ge=1, le=64)] = 4
    hash_threads: Annotated[int, Field(ge=1, le=256)] = 4
    pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    # Regression knobs (see README): off unless set.
    knob_delay: str = ""
    knob_errors: str = ""
    knob_burn: str = ""
    knob_slow_search: bool = False

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        return normalise_database_url(value.strip())

    @field_validator("database_url")
    @classmethod
    def _sqlite_directory(cls, value: str) -> str:
        # Checked here: aiosqlite fails untidily (a stray thread traceback) on a file it cannot create.
        path = sqlite_path(value)
        if path is not None and not path.parent.is_dir():
            raise ValueError(f"the directory of the SQLite file {path} does not exist")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _secret(self) -> Settings:
        if self.jwt_secret and len(self.jwt_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"USERSVC_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        if not self.jwt_secret and not self.dev_mode:
            raise ValueError("USERSVC_JWT_SECRET is required outside dev mode (a PostgreSQL database is set)")
        # The knobs are parsed here too, so that a typo stops the start instead of being ignored.
        parse_knobs(self.knob_delay, self.knob_errors, self.knob_burn)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def dev_mode(self) -> bool:
        """Dev mode: asked for, or implied by a SQLite database when no secret is set (a local file)."""
        return self.dev or (self.is_sqlite and not self.jwt_secret)

    @property
    def signing_secret(self) -> str:
        return self.jwt_secret or DEV_JWT_SECRET


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); a ConfigError that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "USERSVC_" + str(error["loc"][0]).upper() if error["loc"] else "configuration"
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems),
            "fix the USERSVC_* environment variables above (see the service README), or pass --dev locally",
        ) from None
