"""Seed users for load tests: a contract with the load scenarios (emails, one password, names)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from userservice.db import users
from userservice.security import Hasher

SEED_PASSWORD = "perfci-seed-password"  # noqa: S105  # public by design: load tests log in with it
SEED_EMAIL_DOMAIN = "perfci.test"
BATCH = 1000

# Two word lists: a 2-3 letter prefix of a display name matches anywhere from a handful to hundreds of users.
FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amara", "Anna", "Arjun", "Ben", "Bianca", "Carlos", "Chen", "Clara", "Daniel",
    "Dana", "Elena", "Emil", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Julia",
    "Kai", "Kenji", "Lara", "Leo", "Lucia", "Maya", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Priya",
    "Rosa", "Sam", "Sofia", "Tariq", "Uma", "Victor", "Wei", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Almeida", "Bauer", "Becker", "Brown", "Castro", "Costa", "Dubois", "Eriksen", "Fischer",
    "Garcia", "Hansen", "Ito", "Jensen", "Kim", "Kowalski", "Lopez", "Martin", "Meyer", "Moreau", "Nakamura",
    "Novak", "Okafor", "Park", "Patel", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Tanaka", "Weber",
    "Wong", "Yilmaz", "Zhang",
)  # fmt: skip


def seed_email(i: int) -> str:
    return f"seed-{i:06d}@{SEED_EMAIL_DOMAIN}"


def seed_display_name(i: int) -> str:
    return f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]}"


async def seed_users(engine: AsyncEngine, hasher: Hasher, count: int) -> int:
    """Create seed users 0..count-1 that do not exist yet; returns how many were new.

    The one password is hashed once, and rows go in by the thousand with ON CONFLICT DO NOTHING, so
    thousands take seconds and a second run adds nothing.
    """
    password_hash = hasher.hash_sync(SEED_PASSWORD)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stamp = datetime.now(UTC)
    created = 0
    for start in range(0, count, BATCH):
        rows = [
            {"email": seed_email(i), "display_name": seed_display_name(i), "name_key": seed_display_name(i).lower(),
             "password_hash": password_hash, "created_at": stamp, "updated_at": stamp}
            for i in range(start, min(start + BATCH, count))
        ]  # fmt: skip
        # RETURNING counts what was new: executemany's rowcount is not reported by every driver (asyncpg).
        statement = insert(users).on_conflict_do_nothing(index_elements=[users.c.email]).returning(users.c.id)
        async with engine.begin() as conn:
            result = await conn.execute(statement, rows)
            created += len(result.all())
    return created
