"""Request and response bodies; input checks that keep bad text away from the database."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Deliberately simple: one @, something on each side, a dot in the domain, no spaces.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def storable(value: str) -> str:
    """Text both databases can store: PostgreSQL rejects NUL, and lone surrogates are not UTF-8."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _email(value: str) -> str:
    value = storable(value).strip().lower()
    if not EMAIL_PATTERN.match(value):
        raise ValueError("is not an email address")
    return value


def _display_name(value: str) -> str:
    value = " ".join(storable(value).split())
    if not value:
        raise ValueError("must not be blank")
    return value


Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=8, max_length=1024), AfterValidator(storable)]
DisplayName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_display_name)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(storable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterIn(Strict):
    email: Email
    password: Password
    display_name: DisplayName


class LoginIn(Strict):
    email: Annotated[str, Field(max_length=254), AfterValidator(storable)]  # any text: misses are a 401
    password: Annotated[str, Field(max_length=1024), AfterValidator(storable)]


class RefreshIn(Strict):
    refresh_token: OpaqueToken


class UpdateMeIn(Strict):
    display_name: DisplayName | None = None
    password: Password | None = None


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105  # the OAuth 2 token type, not a secret
    expires_in: int


class PublicProfile(BaseModel):
    id: int
    display_name: str
    created_at: datetime


class Me(PublicProfile):
    email: str
    updated_at: datetime


class UserPage(BaseModel):
    items: list[PublicProfile]
    next_cursor: str | None
