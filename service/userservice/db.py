"""Tables, the async engine (PostgreSQL via asyncpg, SQLite via aiosqlite) and schema creation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from userservice.settings import Settings

metadata = MetaData()

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),  # stored lower-case
    Column("display_name", String(100), nullable=False),
    # Lower-cased display name: the search key, so prefix search is case-insensitive and indexable.
    Column("name_key", String(100), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # AUTOINCREMENT: SQLite would otherwise hand a deleted user's id to the next one, and that user's
    # unexpired access tokens with it.
    sqlite_autoincrement=True,
)
# text_pattern_ops lets PostgreSQL serve `LIKE 'prefix%'` from the index under any collation.
Index("ix_users_name_key", users.c.name_key, users.c.id, postgresql_ops={"name_key": "text_pattern_ops"})
Index("ix_users_email_prefix", users.c.email, users.c.id, postgresql_ops={"email": "text_pattern_ops"})

token_families = Table(
    "token_families",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 hex: the token never stored
    Column("family_id", String(36), ForeignKey("token_families.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("used", Boolean, nullable=False, default=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; busy_timeout: writers queue instead of failing "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # LIKE 'abc%' on the lower-cased keys may then use the (binary) indexes.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url, pool_size=settings.pool_size, max_overflow=0, pool_timeout=30
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,  # a dead connection fails one request; pinging costs every request a round trip
    )


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and indexes: a fresh database needs no manual step."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several workers or a seed may start together: one creates, the others wait and find it done.
            await conn.execute(text("SELECT pg_advisory_xact_lock(7262021)"))
        await conn.run_sync(metadata.create_all)


async def database_ready(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True
