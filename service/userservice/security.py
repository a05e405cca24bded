"""Password hashing (argon2id, off the event loop), JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from userservice.settings import Settings

ALGORITHM = "HS256"


class Hasher:
    """argon2id in a thread pool of its own: a login storm queues there, not on the event loop.

    argon2-cffi releases the GIL while hashing, so the threads run in parallel with request handling.
    """

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.hash_time_cost,
            memory_cost=settings.hash_memory_kib,
            parallelism=settings.hash_parallelism,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=settings.hash_threads, thread_name_prefix="argon2")
        # Verified against for unknown emails, so a miss costs the same time as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    def _verify_sync(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; with `stored=None` it hashes the dummy and says False."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._verify_sync, stored, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def issue_access_token(settings: Settings, user_id: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + settings.access_token_ttl_s, "typ": "access"}
    return jwt.encode(claims, settings.signing_secret, algorithm=ALGORITHM)


def read_access_token(settings: Settings, token: str) -> int | None:
    """The user id of a valid, unexpired access token; None for anything else (tampered, expired, junk)."""
    try:
        claims = jwt.decode(token, settings.signing_secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    subject = claims.get("sub")
    # isdigit() alone accepts "²" and other Unicode digits that int() rejects: ASCII digits only.
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
        return None
    return int(subject)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_digest(token: str) -> str:
    """Refresh tokens are random 256-bit values: a fast hash suffices to keep them out of the database."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
