"""A fresh PostgreSQL database per boot, so that two arms of an A/B run never share data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from perfci.errors import BootError

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme.split("+")[0] in POSTGRES_SCHEMES


def plain_postgres_url(url: str) -> str:
    """`postgresql+asyncpg://...` -> `postgresql://...`: the form libpq (psycopg) understands."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def fresh_database(server_url: str, prefix: str = "perfci") -> Iterator[str]:
    """Create a uniquely named database on the server of `server_url`; yield its URL; drop it afterwards.

    The yielded URL keeps the caller's scheme (the service may want `postgresql+asyncpg`). Connections
    left open by a killed service do not block the drop (`WITH (FORCE)`, PostgreSQL 13+).
    """
    admin_url = plain_postgres_url(server_url)
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BootError(
            f"cannot create a database on {redacted(server_url)}: {first_line}",
            "check that PostgreSQL runs there and that the user may CREATE DATABASE",
        ) from exc
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
