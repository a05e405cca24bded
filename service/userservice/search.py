"""Prefix search on display name and email with keyset pagination, each side served by its index."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from userservice.db import users
from userservice.store import MAX_ID, PROFILE_COLUMNS, record


@dataclass(frozen=True)
class Position:
    """Where a page ends: results are ordered by (match key, id)."""

    key: str
    id: int


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next: Position | None


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.key, position.id], ensure_ascii=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position | None:
    """The position a cursor names; None for anything this service did not make."""
    try:
        key, user_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        return None
    if not isinstance(key, str) or type(user_id) is not int or not 0 <= user_id <= MAX_ID or "\x00" in key:
        return None
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return Position(key, user_id)


def like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def match_key(row: dict[str, Any], prefix: str) -> str:
    """A user's place in the results: the smaller of its matching keys (name, email)."""
    keys = [key for key in (row["name_key"], row["email"]) if key.startswith(prefix)]
    return str(min(keys))


def _after(column: Any, position: Position | None) -> ColumnElement[bool]:
    if position is None:
        return true()
    return or_(column > position.key, and_(column == position.key, users.c.id > position.id))


def search_statements(prefix: str, limit: int, after: Position | None) -> tuple[Select[Any], Select[Any]]:
    """The two index range scans: display-name matches in (name_key, id) order, email matches in (email, id).

    A user matching on both sides is taken from the side with the smaller key only, so it appears once.
    """
    pattern = like_prefix(prefix)
    name_hit = users.c.name_key.like(pattern, escape="\\")
    email_hit = users.c.email.like(pattern, escape="\\")
    columns = (*PROFILE_COLUMNS, users.c.name_key, users.c.email)
    by_name = (
        select(*columns)
        .where(name_hit, _after(users.c.name_key, after), not_(and_(email_hit, users.c.email < users.c.name_key)))
        .order_by(users.c.name_key, users.c.id)
        .limit(limit + 1)
    )
    by_email = (
        select(*columns)
        .where(email_hit, _after(users.c.email, after), not_(and_(name_hit, users.c.name_key <= users.c.email)))
        .order_by(users.c.email, users.c.id)
        .limit(limit + 1)
    )
    return by_name, by_email


async def search(engine: AsyncEngine, prefix: str, limit: int, after: Position | None) -> Page:
    """Users whose lower-cased display name or email starts with `prefix`, ordered by (match key, id):
    two ordered index scans (see `search_statements`), merged here."""
    prefix = prefix.lower()
    by_name, by_email = search_statements(prefix, limit, after)
    async with engine.connect() as conn:
        rows = [record(row) for row in await conn.execute(by_name)]
        rows += [record(row) for row in await conn.execute(by_email)]
    rows.sort(key=lambda row: (match_key(row, prefix), row["id"]))
    return _page(rows, prefix, limit)


async def search_slow(engine: AsyncEngine, prefix: str, limit: int, after: Position | None) -> Page:
    """The regression knob's search: the same results, written the careless way.

    `substr(lower(column))` defeats both indexes (a full scan), every match is fetched and sorted here,
    and each profile is then loaded one query at a time (N+1), as a naive ORM loop would.
    """
    prefix = prefix.lower()
    width = len(prefix)
    matches = select(users.c.id, users.c.name_key, users.c.email).where(
        or_(
            func.substr(func.lower(users.c.display_name), 1, width) == prefix,
            func.substr(func.lower(users.c.email), 1, width) == prefix,
        )
    )
    async with engine.connect() as conn:
        found = [dict(row._mapping) for row in await conn.execute(matches)]
        ordered = sorted(found, key=lambda row: (match_key(row, prefix), row["id"]))
        if after is not None:
            ordered = [row for row in ordered if (match_key(row, prefix), row["id"]) > (after.key, after.id)]
        rows = []
        for match in ordered[: limit + 1]:
            profile = (await conn.execute(select(*PROFILE_COLUMNS).where(users.c.id == match["id"]))).one()
            rows.append(record(profile) | {"name_key": match["name_key"], "email": match["email"]})
    return _page(rows, prefix, limit)


def _page(rows: list[dict[str, Any]], prefix: str, limit: int) -> Page:
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Position(match_key(last, prefix), last["id"]))
