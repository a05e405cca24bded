"""The caller's account, public profiles, search with keyset pagination (and its indexes), health."""

from __future__ import annotations

import socket
import time

import jwt
import pytest
from sqlalchemy import text
from userservice.db import create_engine
from userservice.search import Position, search_statements
from userservice.security import Hasher
from userservice.seed import seed_display_name, seed_email, seed_users
from userservice.settings import Settings

pytestmark = pytest.mark.anyio


async def test_me_needs_a_valid_token(service) -> None:
    await service.register("me@example.org")
    tokens = await service.login("me@example.org")
    assert (await service.client.get("/users/me")).status_code == 401
    header, payload, signature = tokens["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = await service.client.get("/users/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    forged = jwt.encode({"sub": "1", "exp": int(time.time()) + 60, "typ": "access"}, "x" * 40, algorithm="HS256")
    assert (await service.client.get("/users/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_expired_access_token_is_401(service) -> None:
    user_id = await service.register("old@example.org")
    claims = {"sub": str(user_id), "iat": int(time.time()) - 120, "exp": int(time.time()) - 60, "typ": "access"}
    expired = jwt.encode(claims, service.settings.jwt_secret, algorithm="HS256")
    response = await service.client.get("/users/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401


async def test_patch_me_changes_name_and_password(service) -> None:
    await service.register("patch@example.org", name="Before")
    tokens = await service.login("patch@example.org")
    response = await service.client.patch(
        "/users/me", json={"display_name": "After", "password": "a new password"}, headers=service.bearer(tokens)
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "After"
    bad = await service.client.post(
        "/auth/login", json={"email": "patch@example.org", "password": "correct horse battery"}
    )
    assert bad.status_code == 401
    await service.login("patch@example.org", "a new password")
    # The password change ended the session that was open before it.
    stale = await service.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert stale.status_code == 401
    empty = await service.client.patch("/users/me", json={}, headers=service.bearer(tokens))
    assert empty.status_code == 422


async def test_delete_me_removes_the_account(service) -> None:
    user_id = await service.register("gone@example.org")
    tokens = await service.login("gone@example.org")
    assert (await service.client.delete("/users/me", headers=service.bearer(tokens))).status_code == 204
    assert (await service.client.get("/users/me", headers=service.bearer(tokens))).status_code == 401
    assert (await service.client.get(f"/users/{user_id}")).status_code == 404
    refresh = await service.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    # The email is free again, and the new account never inherits the old id (nor its tokens).
    new_id = await service.register("gone@example.org")
    assert new_id != user_id
    assert (await service.client.get("/users/me", headers=service.bearer(tokens))).status_code == 401


async def test_public_profile_hides_the_email(service) -> None:
    user_id = await service.register("public@example.org", name="Public Person")
    response = await service.client.get(f"/users/{user_id}")
    assert response.status_code == 200
    assert response.json()["display_name"] == "Public Person"
    assert "email" not in response.json()
    missing = await service.client.get("/users/987654")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "user_not_found"
    for bad in ("abc", "0", "-1", str(2**64)):
        assert (await service.client.get(f"/users/{bad}")).status_code == 422


async def _all_pages(service, q: str, limit: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(1000):
        params = {"q": q, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await service.client.get("/users", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def _expected(count: int, q: str) -> set[int]:
    """Ids (1-based, in seed order) whose display name or email starts with q, case-insensitively."""
    q = q.lower()
    return {i + 1 for i in range(count) if seed_display_name(i).lower().startswith(q) or seed_email(i).startswith(q)}


async def _seed(service, count: int) -> None:
    hasher = Hasher(service.settings)
    try:
        await seed_users(service.app.state.engine, hasher, count)
    finally:
        hasher.close()


@pytest.mark.parametrize("q", ["al", "AL", "ma", "zoe w", "seed-0001", "a", "", "nobody", "s%", "_"])
async def test_search_pages_through_every_match_once(service, q) -> None:
    await _seed(service, 600)
    items = await _all_pages(service, q, limit=7)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == _expected(600, q)
    assert all(set(item) == {"id", "display_name", "created_at"} for item in items)


async def test_search_limits_and_cursors_are_checked(service) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "not-a-cursor"}, {"cursor": "WzFd"}):
        response = await service.client.get("/users", params=params)
        assert response.status_code == 422, params
        assert "error" in response.json()


def _explain(engine, statement) -> str:
    # The engine's own dialect: its driver's paramstyle decides how a literal % is written.
    return str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


async def test_search_is_served_by_indexes(service) -> None:
    await _seed(service, 3000)
    engine = service.app.state.engine
    name = engine.dialect.name
    statements = search_statements("al", 20, None) + search_statements("seed-00", 20, Position("seed-0001", 5))
    async with engine.connect() as conn:
        if name == "postgresql":
            await conn.execute(text("ANALYZE users"))
        for statement in statements:
            sql = _explain(engine, statement)
            if name == "postgresql":
                plan = "\n".join(row[0] for row in await conn.execute(text("EXPLAIN " + sql)))
                assert "Seq Scan" not in plan, plan
                assert "Index Scan" in plan or "Index Only Scan" in plan, plan
            else:
                plan = "\n".join(row[-1] for row in await conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
                assert "USING INDEX ix_users_" in plan or "USING COVERING INDEX ix_users_" in plan, plan
                assert "TEMP B-TREE" not in plan, plan


async def test_health_and_readiness(service) -> None:
    assert (await service.client.get("/healthz")).json() == {"status": "ok"}
    assert (await service.client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_gone(service) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens there once the socket closes
    unreachable = Settings(database_url=f"postgresql://nobody@127.0.0.1:{closed_port}/none", jwt_secret="s" * 40)
    working = service.app.state.engine
    service.app.state.engine = create_engine(unreachable)
    try:
        response = await service.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert (await service.client.get("/healthz")).status_code == 200
    finally:
        await service.app.state.engine.dispose()
        service.app.state.engine = working
