"""The compose file perfci runs: the user's own, resolved by compose, with perfci's host ports and settings.

Any ordinary compose file works, fixed `ports:` included: perfci resolves it (`compose config`), publishes
the measured service and the database on free ports of 127.0.0.1 only, drops the other services' published
ports (two arms, or two runs, would fight over them), and gives the measured service its image tag, the
configured environment and the URL of its trial database. What the file must satisfy: docs/containers.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from perfci.errors import ConfigError

POSTGRES_PORT = 5432  # inside the database container


@dataclass(frozen=True)
class Placement:
    """What perfci changes in the resolved file."""

    service: str
    port: int  # the measured service's port inside its container
    host_port: int
    database_service: str
    database_host_port: int
    image_tag: str
    env: Mapping[str, str]  # given to the measured service, on top of its own environment


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping (compose accepts a list of KEY=VALUE too)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def service_table(document: Mapping[str, Any], name: str, key: str, declared_in: str) -> dict[str, Any]:
    services = document.get("services") or {}
    if name not in services:
        raise ConfigError(
            f"{key} = {name!r}, but the compose file has no such service; it has: {sorted(services)} ({declared_in})",
            f"set {key} to one of the compose file's services",
        )
    table: dict[str, Any] = services[name]
    return table


def database_credentials(document: Mapping[str, Any], database_service: str, declared_in: str) -> tuple[str, str, str]:
    """(user, password, database) of the PostgreSQL service, as the official image reads them."""
    env = environment(service_table(document, database_service, "service.compose.database_service", declared_in))
    user = env.get("POSTGRES_USER", "postgres")
    return user, env.get("POSTGRES_PASSWORD", ""), env.get("POSTGRES_DB", user)


def database_url_of(document: Mapping[str, Any], service: str, database_env: str, declared_in: str) -> str:
    """The database URL the measured service is configured with (perfci changes only its database name)."""
    env = environment(service_table(document, service, "service.compose.service", declared_in))
    url = env.get(database_env, "")
    if not database_env or "://" not in url:
        raise ConfigError(
            f"service.compose.database_env = {database_env!r}: the service {service!r} sets no database URL in "
            f"that variable ({declared_in})",
            f"give {service!r} `environment: {database_env or 'DATABASE_URL'}: postgresql://USER:PASSWORD@DB/NAME` "
            "in the compose file, and name that variable in database_env",
        )
    return url


def with_database_name(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def place(document: Mapping[str, Any], placement: Placement) -> dict[str, Any]:
    """A copy of the resolved file with perfci's ports, image tag and environment."""
    result = dict(document)
    services = {name: dict(table) for name, table in (document.get("services") or {}).items()}
    for name, table in services.items():
        table.pop("ports", None)  # another arm's copy of the same stack publishes the same fixed ports
        table.pop("container_name", None)  # fixed names collide in the same way
        if name == placement.service:
            table["ports"] = [f"127.0.0.1:{placement.host_port}:{placement.port}"]
            if "build" in table:
                table["image"] = placement.image_tag  # one image per arm: the arms never share one
            # Compose interpolates the file it runs: a `$` of perfci's values must reach the service as it is.
            table["environment"] = {**environment(table), **{k: v.replace("$", "$$") for k, v in placement.env.items()}}
        elif name == placement.database_service:
            table["ports"] = [f"127.0.0.1:{placement.database_host_port}:{POSTGRES_PORT}"]
    result["services"] = services
    return result
