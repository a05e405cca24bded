"""Bad input never yields a 500: malformed JSON, wrong types, huge bodies, odd Unicode, SQL-looking text.

Against a real uvicorn on SQLite; the PostgreSQL-only pitfalls (NUL characters) are covered in-process.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

LIVE_SERVER_SECRET = "test-secret-" + "x" * 40  # conftest.TEST_SECRET: what the live server signs with
JSON_ENDPOINTS = [
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("PATCH", "/users/me"),
]
NASTY_TEXT = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "\x00",
    "a\x00b@example.org",
    "\ud800",
    "😀" * 300,
    "ﷺ" * 5000,
    "%",
    "_",
    "\\",
    "Robert'); DELETE FROM refresh_tokens;--",
    "x" * 100_000,
]
JSON = {"Content-Type": "application/json"}
NASTY_SHORT = [text for text in NASTY_TEXT if len(text) <= 1000]  # what fits in a URL
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.sampled_from(NASTY_TEXT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=10,
)
bodies = st.dictionaries(
    st.sampled_from(["email", "password", "display_name", "refresh_token", "extra"]) | st.text(max_size=10),
    json_values,
    max_size=5,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _query(params: dict[str, str]) -> str:
    # Lone surrogates go out as the (invalid UTF-8) bytes they stand for: the server must cope with those too.
    return urlencode(params, encoding="utf-8", errors="surrogatepass")


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code == 400 and response.headers.get("content-type", "").startswith("text/plain"):
        return  # uvicorn's HTTP parser refused the request before the app saw it
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)


@pytest.fixture(scope="module")
def client(live_server) -> httpx.Client:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        yield http


@SETTINGS
@given(endpoint=st.sampled_from(JSON_ENDPOINTS), body=bodies)
def test_any_json_body_is_answered_without_a_500(client, endpoint, body) -> None:
    method, path = endpoint
    # json.dumps, not httpx's encoder: it also writes NaN/Infinity and escapes lone surrogates.
    _check(client.request(method, path, content=json.dumps(body), headers=JSON | {"Authorization": "Bearer junk"}))


@SETTINGS
@given(endpoint=st.sampled_from(JSON_ENDPOINTS), raw=st.binary(max_size=300))
def test_any_raw_body_is_answered_without_a_500(client, endpoint, raw) -> None:
    method, path = endpoint
    _check(client.request(method, path, content=raw, headers={"Content-Type": "application/json"}))


@SETTINGS
@given(
    q=st.text(max_size=120) | st.sampled_from(NASTY_SHORT),
    limit=st.integers(-5, 200).map(str) | st.text(max_size=5),
    cursor=st.none() | st.text(max_size=80) | st.sampled_from(["WyJ4IiwxXQ", "WyJ4IiwtMV0", "W251bGwsMV0"]),
)
def test_any_search_query_is_answered_without_a_500(client, q, limit, cursor) -> None:
    params = {"q": q, "limit": limit} | ({"cursor": cursor} if cursor is not None else {})
    _check(client.get("/users?" + _query(params)))


@SETTINGS
@given(user_id=st.text(min_size=1, max_size=30).filter(lambda s: s not in {".", "..", "me"}) | st.integers().map(str))
def test_any_user_id_is_answered_without_a_500(client, user_id) -> None:
    segment = quote(user_id.encode("utf-8", "surrogatepass"), safe="")
    _check(client.get(f"/users/{segment}"))


@SETTINGS
@given(token=st.text(max_size=200) | st.sampled_from(NASTY_TEXT[:4]))
def test_any_bearer_token_is_answered_without_a_500(client, token) -> None:
    header = "Bearer " + token.encode("utf-8", "surrogatepass").decode("latin-1", "replace")
    try:
        response = client.get("/users/me", headers={"Authorization": header})
    except (UnicodeEncodeError, ValueError, httpx.LocalProtocolError):
        return  # not a header HTTP can carry: the client refuses to send it
    _check(response)
    assert response.status_code in (400, 401)


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_nasty_text_in_every_field(client, text) -> None:
    for method, path in JSON_ENDPOINTS:
        for field in ("email", "password", "display_name", "refresh_token"):
            body = {"email": "a@b.io", "password": "long enough password", "display_name": "A", field: text}
            _check(client.request(method, path, content=json.dumps(body), headers=JSON))
    _check(client.get("/users?" + _query({"q": text[:100]})))


def test_malformed_json_is_422(client) -> None:
    response = client.post("/auth/login", content=b'{"email": "a@b.io", ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_wrong_types_are_422(client) -> None:
    response = client.post("/auth/register", json={"email": 5, "password": ["x"], "display_name": {"a": 1}})
    assert response.status_code == 422


def test_huge_body_is_413(client) -> None:
    huge = {"email": "a@b.io", "password": "x" * 2_000_000}
    response = client.post("/auth/login", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_huge_chunked_body_is_413(client) -> None:
    def chunks():
        yield b'{"email": "a@b.io", "password": "'
        for _ in range(200):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post("/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_unknown_route_and_method_use_the_error_shape(client) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/auth/login")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.anyio
@pytest.mark.parametrize("text", ["\x00", "nul\x00inside", "\ud83d"])
async def test_text_postgresql_cannot_store_is_422_on_both_databases(service, text) -> None:
    # PostgreSQL rejects NUL in text and nothing stores a lone surrogate: refused before the database.
    body = {"email": "nul@example.org", "password": "long enough password", "display_name": text}
    assert (await service.client.post("/auth/register", content=json.dumps(body), headers=JSON)).status_code == 422
    body = {"email": f"x{text}@example.org", "password": "long enough password"}
    assert (await service.client.post("/auth/login", content=json.dumps(body), headers=JSON)).status_code == 422
    assert (await service.client.get("/users?" + _query({"q": text}))).status_code in (200, 422)


@pytest.mark.parametrize("subject", ["²", "١٢", "߁", "+1", " 1", "-1", ""])
def test_a_validly_signed_token_with_a_non_ascii_digit_subject_is_401(client, subject) -> None:
    """isdigit() accepts "²" and Arabic-Indic digits, which int() rejects: it was a 500 and a reset connection."""
    claims = {"sub": subject, "exp": int(time.time()) + 60, "typ": "access"}
    token = jwt.encode(claims, LIVE_SERVER_SECRET, algorithm="HS256")
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert client.get("/healthz").status_code == 200  # the same keep-alive connection still serves
