"""Registration, login, refresh-token rotation and family revocation, logout, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

pytestmark = pytest.mark.anyio


async def test_register_returns_the_account_and_normalises_input(service) -> None:
    body = {"email": "  Ada@Example.ORG ", "password": "correct horse battery", "display_name": "  Ada   Lovelace "}
    response = await service.client.post("/auth/register", json=body)
    assert response.status_code == 201
    account = response.json()
    assert account["email"] == "ada@example.org"
    assert account["display_name"] == "Ada Lovelace"
    assert "password" not in response.text
    assert isinstance(account["id"], int)


async def test_duplicate_email_is_409_in_the_error_shape(service) -> None:
    await service.register("dup@example.org")
    response = await service.client.post(
        "/auth/register", json={"email": "DUP@example.org", "password": "another password", "display_name": "X"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "long enough pw", "display_name": "A"},
        {"email": "a@b.io", "password": "short", "display_name": "A"},
        {"email": "a@b.io", "password": "long enough pw", "display_name": "   "},
        {"email": "a@b.io", "password": "long enough pw"},
        {"email": "a@b.io", "password": "long enough pw", "display_name": "A", "admin": True},
    ],
    ids=["bad-email", "short-password", "blank-name", "missing-name", "unknown-field"],
)
async def test_bad_registration_is_422(service, body) -> None:
    response = await service.client.post("/auth/register", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"]


async def test_login_gives_a_working_access_token_and_a_refresh_token(service) -> None:
    user_id = await service.register("login@example.org")
    tokens = await service.login("LOGIN@example.org")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == service.settings.access_token_ttl_s
    claims = jwt.decode(tokens["access_token"], service.settings.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(user_id)
    me = await service.client.get("/users/me", headers=service.bearer(tokens))
    assert me.status_code == 200
    assert me.json()["id"] == user_id


async def test_bad_credentials_look_the_same_whether_the_email_exists_or_not(service) -> None:
    await service.register("known@example.org")
    wrong_password = await service.client.post(
        "/auth/login", json={"email": "known@example.org", "password": "wrong password"}
    )
    unknown_email = await service.client.post(
        "/auth/login", json={"email": "nobody@example.org", "password": "wrong password"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


async def test_unknown_email_still_pays_for_a_hash(launch) -> None:
    # With a deliberately costly hash, a miss must take about as long as a wrong password.
    async with launch(hash_time_cost=12, hash_memory_kib=1024) as service:
        await service.register("timed@example.org")

        async def attempt(email: str) -> float:
            start = time.perf_counter()
            response = await service.client.post("/auth/login", json={"email": email, "password": "wrong password"})
            assert response.status_code == 401
            return time.perf_counter() - start

        known = min([await attempt("timed@example.org") for _ in range(3)])
        unknown = min([await attempt("missing@example.org") for _ in range(3)])
        assert unknown > 0.5 * known, (known, unknown)


async def test_refresh_rotates_the_token(service) -> None:
    await service.register("rotate@example.org")
    first = await service.login("rotate@example.org")
    response = await service.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await service.client.get("/users/me", headers=service.bearer(second))
    assert me.status_code == 200
    third = await service.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_rotated_token_revokes_the_whole_family(service) -> None:
    await service.register("reuse@example.org")
    first = await service.login("reuse@example.org")
    other_session = await service.login("reuse@example.org")
    second = (await service.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    third = (await service.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()

    replay = await service.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_reused"
    # The newest token of that family is dead too ...
    after = await service.client.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert after.status_code == 401
    # ... while another login of the same user is a family of its own and lives on.
    other = await service.client.post("/auth/refresh", json={"refresh_token": other_session["refresh_token"]})
    assert other.status_code == 200


async def test_fifty_concurrent_refreshes_with_one_token_let_exactly_one_through(service) -> None:
    await service.register("race@example.org")
    tokens = await service.login("race@example.org")
    responses = await asyncio.gather(
        *(service.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(50))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == 49, statuses


async def test_unknown_refresh_token_is_401(service) -> None:
    response = await service.client.post("/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_refresh_token"


async def test_expired_refresh_token_is_401(launch) -> None:
    async with launch(refresh_token_ttl_s=1) as service:
        await service.register("expire@example.org")
        tokens = await service.login("expire@example.org")
        await asyncio.sleep(1.2)
        response = await service.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 401


async def test_logout_revokes_the_family(service) -> None:
    await service.register("logout@example.org")
    tokens = await service.login("logout@example.org")
    rotated = (await service.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    response = await service.client.post("/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204
    after = await service.client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401
    unknown = await service.client.post("/auth/logout", json={"refresh_token": "never-issued"})
    assert unknown.status_code == 401


async def test_concurrent_registrations_and_logins_all_succeed(service) -> None:
    # SQLite: WAL, a busy timeout and write-first transactions keep "database is locked" away.
    emails = [f"crowd{i}@example.org" for i in range(40)]
    registered = await asyncio.gather(
        *(service.client.post("/auth/register", json={"email": e, "password": "long enough pw", "display_name": e})
          for e in emails)
    )  # fmt: skip
    assert {response.status_code for response in registered} == {201}
    logins = await asyncio.gather(
        *(service.client.post("/auth/login", json={"email": e, "password": "long enough pw"}) for e in emails)
    )
    assert {response.status_code for response in logins} == {200}
    refreshes = await asyncio.gather(
        *(service.client.post("/auth/refresh", json={"refresh_token": r.json()["refresh_token"]}) for r in logins)
    )
    assert {response.status_code for response in refreshes} == {200}
