"""Database operations, each one short transaction (never held open across a password hash)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from userservice.db import refresh_tokens, token_families, users

MAX_ID = 2**63 - 1
PROFILE_COLUMNS = (users.c.id, users.c.display_name, users.c.created_at)
ME_COLUMNS = (*PROFILE_COLUMNS, users.c.email, users.c.updated_at)


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for key in ("created_at", "updated_at"):
        if key in record:
            record[key] = _aware(record[key])
    return record


class DuplicateEmailError(Exception):
    pass


async def create_user(engine: AsyncEngine, email: str, display_name: str, password_hash: str) -> dict[str, Any]:
    stamp = now()
    values = {
        "email": email, "display_name": display_name, "name_key": display_name.lower(),
        "password_hash": password_hash, "created_at": stamp, "updated_at": stamp,
    }  # fmt: skip
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(insert(users).values(**values).returning(*ME_COLUMNS))).one()
    except IntegrityError:
        raise DuplicateEmailError(email) from None
    return record(row)


async def credentials(engine: AsyncEngine, email: str) -> tuple[int, str] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(users.c.id, users.c.password_hash).where(users.c.email == email))).first()
    return (row.id, row.password_hash) if row else None


async def start_session(engine: AsyncEngine, user_id: int, token_hash: str, ttl_s: int) -> None:
    """A new token family (one login) with its first refresh token."""
    stamp = now()
    family = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(insert(token_families).values(id=family, user_id=user_id, revoked=False, created_at=stamp))
        await conn.execute(
            insert(refresh_tokens).values(
                token_hash=token_hash,
                family_id=family,
                user_id=user_id,
                used=False,
                expires_at=stamp + timedelta(seconds=ttl_s),
                created_at=stamp,
            )
        )


@dataclass(frozen=True)
class Rotation:
    user_id: int | None  # set when the rotation succeeded
    reused: bool = False  # the token had been used before: its family is now revoked


async def rotate(engine: AsyncEngine, old_hash: str, new_hash: str, ttl_s: int) -> Rotation:
    """Spend `old_hash` and store `new_hash` in its family, atomically.

    The conditional UPDATE (`... WHERE used = false`) is the lock: of any number of concurrent rotations
    of one token exactly one changes a row. It is the transaction's first statement, so SQLite takes its
    write lock before reading anything (no stale-snapshot "database is locked").
    """
    stamp = now()
    live_family = select(token_families.c.id).where(token_families.c.revoked.is_(False)).scalar_subquery()
    spend = (
        update(refresh_tokens)
        .where(
            refresh_tokens.c.token_hash == old_hash,
            refresh_tokens.c.used.is_(False),
            refresh_tokens.c.expires_at > stamp,
            refresh_tokens.c.family_id.in_(live_family),
        )
        .values(used=True)
        .returning(refresh_tokens.c.family_id, refresh_tokens.c.user_id)
    )
    async with engine.begin() as conn:
        spent = (await conn.execute(spend)).first()
        if spent is not None:
            await conn.execute(
                insert(refresh_tokens).values(
                    token_hash=new_hash,
                    family_id=spent.family_id,
                    user_id=spent.user_id,
                    used=False,
                    expires_at=stamp + timedelta(seconds=ttl_s),
                    created_at=stamp,
                )
            )
            return Rotation(user_id=spent.user_id)
    # Not spent just now: either a replay of a spent token (revoke its family, in one write-first
    # statement) or a token that is unknown, expired or already revoked.
    spent_family = (
        select(refresh_tokens.c.family_id)
        .where(refresh_tokens.c.token_hash == old_hash, refresh_tokens.c.used.is_(True))
        .scalar_subquery()
    )
    async with engine.begin() as conn:
        revoked = await conn.execute(
            update(token_families).where(token_families.c.id == spent_family).values(revoked=True)
        )
    if revoked.rowcount == 0:
        return Rotation(user_id=None)
    return Rotation(user_id=None, reused=True)


async def revoke_family_of(engine: AsyncEngine, token_hash: str) -> bool:
    """Logout: revoke the family the token belongs to. False when the token is unknown."""
    family = select(refresh_tokens.c.family_id).where(refresh_tokens.c.token_hash == token_hash).scalar_subquery()
    async with engine.begin() as conn:
        result = await conn.execute(update(token_families).where(token_families.c.id == family).values(revoked=True))
    return result.rowcount > 0


async def get_me(engine: AsyncEngine, user_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*ME_COLUMNS).where(users.c.id == user_id))).first()
    return record(row) if row else None


async def update_me(
    engine: AsyncEngine, user_id: int, display_name: str | None, password_hash: str | None
) -> dict[str, Any] | None:
    values: dict[str, Any] = {"updated_at": now()}
    if display_name is not None:
        values |= {"display_name": display_name, "name_key": display_name.lower()}
    if password_hash is not None:
        values["password_hash"] = password_hash
    async with engine.begin() as conn:
        row = (
            await conn.execute(update(users).where(users.c.id == user_id).values(**values).returning(*ME_COLUMNS))
        ).first()
        if row is not None and password_hash is not None:
            # A new password ends every session started with the old one.
            await conn.execute(update(token_families).where(token_families.c.user_id == user_id).values(revoked=True))
    return record(row) if row else None


async def delete_user(engine: AsyncEngine, user_id: int) -> bool:
    async with engine.begin() as conn:
        await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.user_id == user_id))
        await conn.execute(delete(token_families).where(token_families.c.user_id == user_id))
        result = await conn.execute(delete(users).where(users.c.id == user_id))
    return result.rowcount > 0


async def get_profile(engine: AsyncEngine, user_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*PROFILE_COLUMNS).where(users.c.id == user_id))).first()
    return record(row) if row else None
