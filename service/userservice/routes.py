"""The HTTP endpoints: auth, the caller's own account, public profiles and search, health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from userservice import search, store
from userservice.db import database_ready
from userservice.errors import APIError, error_response
from userservice.schemas import (
    LoginIn,
    Me,
    PublicProfile,
    RefreshIn,
    RegisterIn,
    TokensOut,
    UpdateMeIn,
    UserPage,
    storable,
)
from userservice.security import (
    Hasher,
    issue_access_token,
    new_refresh_token,
    read_access_token,
    refresh_token_digest,
)
from userservice.settings import Settings

router = APIRouter()
bearer = HTTPBearer(auto_error=False)

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


# Dependencies are `async def` although they never await: FastAPI runs a plain `def` dependency in a
# thread pool, which would cost every request a thread hop per dependency.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def _hasher(request: Request) -> Hasher:
    hasher: Hasher = request.app.state.hasher
    return hasher


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
HasherDep = Annotated[Hasher, Depends(_hasher)]


async def _current_user_id(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> int:
    if credentials is None:
        raise APIError(401, "unauthorized", "an access token is required", UNAUTHORIZED_HEADERS)
    user_id = read_access_token(settings, credentials.credentials)
    if user_id is None or user_id > store.MAX_ID:
        raise APIError(401, "invalid_token", "the access token is invalid or expired", UNAUTHORIZED_HEADERS)
    return user_id


UserIdDep = Annotated[int, Depends(_current_user_id)]


def _gone() -> APIError:
    return APIError(401, "invalid_token", "the account of this token no longer exists", UNAUTHORIZED_HEADERS)


async def _tokens(settings: Settings, engine: AsyncEngine, user_id: int) -> TokensOut:
    refresh = new_refresh_token()
    await store.start_session(engine, user_id, refresh_token_digest(refresh), settings.refresh_token_ttl_s)
    return TokensOut(
        access_token=issue_access_token(settings, user_id), refresh_token=refresh,
        expires_in=settings.access_token_ttl_s,
    )  # fmt: skip


@router.post("/auth/register", status_code=201, response_model=Me)
async def register(body: RegisterIn, engine: EngineDep, hasher: HasherDep) -> dict[str, Any]:
    password_hash = await hasher.hash(body.password)
    try:
        return await store.create_user(engine, body.email, body.display_name, password_hash)
    except store.DuplicateEmailError:
        raise APIError(409, "email_taken", "an account with this email exists") from None


@router.post("/auth/login", response_model=TokensOut)
async def login(body: LoginIn, settings: SettingsDep, engine: EngineDep, hasher: HasherDep) -> TokensOut:
    found = await store.credentials(engine, body.email.strip().lower())
    # Unknown emails verify against a dummy hash: both failures take the same time and say the same thing.
    if not await hasher.verify(found[1] if found else None, body.password) or found is None:
        raise APIError(401, "invalid_credentials", "email or password is wrong")
    return await _tokens(settings, engine, found[0])


@router.post("/auth/refresh", response_model=TokensOut)
async def refresh(body: RefreshIn, settings: SettingsDep, engine: EngineDep) -> TokensOut:
    new = new_refresh_token()
    rotation = await store.rotate(
        engine, refresh_token_digest(body.refresh_token), refresh_token_digest(new), settings.refresh_token_ttl_s
    )
    if rotation.reused:
        raise APIError(401, "token_reused", "this refresh token was already used; its session is now revoked")
    if rotation.user_id is None:
        raise APIError(401, "invalid_refresh_token", "the refresh token is invalid, expired or revoked")
    return TokensOut(
        access_token=issue_access_token(settings, rotation.user_id), refresh_token=new,
        expires_in=settings.access_token_ttl_s,
    )  # fmt: skip


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshIn, engine: EngineDep) -> Response:
    if not await store.revoke_family_of(engine, refresh_token_digest(body.refresh_token)):
        raise APIError(401, "invalid_refresh_token", "the refresh token is unknown")
    return Response(status_code=204)


@router.get("/users/me", response_model=Me)
async def get_me(user_id: UserIdDep, engine: EngineDep) -> dict[str, Any]:
    me = await store.get_me(engine, user_id)
    if me is None:
        raise _gone()
    return me


@router.patch("/users/me", response_model=Me)
async def update_me(body: UpdateMeIn, user_id: UserIdDep, engine: EngineDep, hasher: HasherDep) -> dict[str, Any]:
    if body.display_name is None and body.password is None:
        raise APIError(422, "validation_error", "nothing to change: give display_name and/or password")
    password_hash = await hasher.hash(body.password) if body.password is not None else None
    me = await store.update_me(engine, user_id, body.display_name, password_hash)
    if me is None:
        raise _gone()
    return me


@router.delete("/users/me", status_code=204)
async def delete_me(user_id: UserIdDep, engine: EngineDep) -> Response:
    if not await store.delete_user(engine, user_id):
        raise _gone()
    return Response(status_code=204)


@router.get("/users/{id}", response_model=PublicProfile)
async def get_user(
    id: Annotated[int, Path(ge=1, le=store.MAX_ID)], engine: EngineDep
) -> dict[str, Any]:  # the template names it {id}
    profile = await store.get_profile(engine, id)
    if profile is None:
        raise APIError(404, "user_not_found", f"no user with id {id}")
    return profile


@router.get("/users", response_model=UserPage)
async def search_users(
    settings: SettingsDep,
    engine: EngineDep,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> UserPage:
    try:
        prefix = storable(q).strip()
    except ValueError as exc:
        raise APIError(422, "validation_error", f"q {exc}") from None
    after = None
    if cursor:
        after = search.decode_cursor(cursor)
        if after is None:
            raise APIError(422, "invalid_cursor", "cursor is not one this service returned")
    run = search.search_slow if settings.knob_slow_search else search.search
    page = await run(engine, prefix, limit, after)
    return UserPage(
        items=[PublicProfile(**row) for row in page.rows],
        next_cursor=search.encode_cursor(page.next) if page.next is not None else None,
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(engine: EngineDep) -> Any:
    try:
        await database_ready(engine)
    except Exception as exc:  # noqa: BLE001  # any failure to reach the database means "not ready"
        return error_response(503, "database_unavailable", f"database not reachable: {type(exc).__name__}")
    return {"status": "ready"}
