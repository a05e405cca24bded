"""The commands as a user runs them: `userservice serve` / `seed` and `python -m userservice`, for real."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from userservice.seed import SEED_PASSWORD, seed_display_name, seed_email
from userservice.settings import normalise_database_url

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str], cwd, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("USERSVC_")}
    environment.update({"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "64", **env})
    return subprocess.run(
        [sys.executable, "-m", "userservice", *args], env=environment, cwd=cwd, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:///./x.sqlite3", "sqlite+aiosqlite:///./x.sqlite3"),
    ],
)
def test_database_urls_get_their_async_driver(url, expected) -> None:
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"USERSVC_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}, "USERSVC_JWT_SECRET"),
        ({"USERSVC_JWT_SECRET": "short"}, "USERSVC_JWT_SECRET"),
        ({"USERSVC_HASH_TIME_COST": "not-a-number"}, "USERSVC_HASH_TIME_COST"),
        ({"USERSVC_DATABASE_URL": "mysql://x/y"}, "USERSVC_DATABASE_URL"),
        ({"USERSVC_KNOB_DELAY": "GET /users=soon"}, "USERSVC_KNOB_DELAY"),
    ],
    ids=["postgres-without-secret", "short-secret", "bad-number", "unsupported-database", "bad-knob"],
)
def test_bad_configuration_stops_with_a_two_line_error(tmp_path, env, needle) -> None:
    result = _run(["serve", "--port", "0"], env, tmp_path, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert lines[1].startswith("hint: ")


def test_serve_with_no_set_up_uses_sqlite_in_dev_mode(tmp_path, serve) -> None:
    """`userservice serve --port P` in an empty directory: a SQLite file there, dev mode, said in the log."""
    server = serve(tmp_path, {})
    response = httpx.post(
        f"{server.base_url}/auth/register",
        json={"email": "dev@example.org", "password": "long enough password", "display_name": "Dev"},
    )
    assert response.status_code == 201
    assert (tmp_path / "userservice.sqlite3").is_file()
    assert "dev mode" in server.log_path.read_text()


def _check_seeded(base_url: str, count: int) -> None:
    for i in (0, count // 2, count - 1):
        tokens = httpx.post(f"{base_url}/auth/login", json={"email": seed_email(i), "password": SEED_PASSWORD})
        assert tokens.status_code == 200, tokens.text
        me = httpx.get(f"{base_url}/users/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
        assert me.json()["display_name"] == seed_display_name(i)
    missing = httpx.post(f"{base_url}/auth/login", json={"email": seed_email(count), "password": SEED_PASSWORD})
    assert missing.status_code == 401


def test_seed_is_fast_and_idempotent_on_sqlite(tmp_path, serve) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.sqlite3'}"
    start = time.perf_counter()
    first = _run(["seed", "--count", "3000", "--database-url", url], {}, tmp_path)
    elapsed = time.perf_counter() - start
    assert first.returncode == 0, first.stderr
    assert "seeded 3000 new users" in first.stdout
    assert elapsed < 30, elapsed  # a loose bound against a per-user hash; the benchmark prints the figure
    again = _run(["seed", "--count", "3500", "--database-url", url], {}, tmp_path)
    assert "seeded 500 new users (3000 existed)" in again.stdout, again.stdout
    server = serve(tmp_path, {"USERSVC_DATABASE_URL": url})
    _check_seeded(server.base_url, 3500)


@pytest.mark.postgres
def test_seed_and_serve_with_workers_on_postgresql(tmp_path, serve, postgres_url) -> None:
    env = {"USERSVC_DATABASE_URL": postgres_url, "USERSVC_JWT_SECRET": "s" * 40}
    seeded = _run(["seed", "--count", "1000"], env, tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 1000 new users (0 existed)" in seeded.stdout
    again = _run(["seed", "--count", "1200"], env, tmp_path)
    assert "seeded 200 new users (1000 existed)" in again.stdout
    server = serve(tmp_path, env, "--workers", "2")
    _check_seeded(server.base_url, 1200)
    # Tokens from one worker work on the other: many requests spread over both.
    tokens = httpx.post(f"{server.base_url}/auth/login", json={"email": seed_email(1), "password": SEED_PASSWORD})
    header = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    with httpx.Client(base_url=server.base_url) as client:
        assert {client.get("/users/me", headers=header).status_code for _ in range(40)} == {200}


@pytest.mark.parametrize("command", [["seed", "--count", "5"], ["serve", "--port", "0"]])
@pytest.mark.parametrize(
    ("url", "code", "message"),
    [("postgresql://nobody@127.0.0.1:1/x", 3, "error: cannot reach the database"),
     ("sqlite:///{tmp}/no/such/dir/x.sqlite3", 2, "error: invalid configuration: USERSVC_DATABASE_URL")],
)  # fmt: skip
def test_an_unreachable_database_is_a_two_line_error(tmp_path, command, url, code, message) -> None:
    env = {"USERSVC_JWT_SECRET": "s" * 40, "USERSVC_DATABASE_URL": url.format(tmp=tmp_path)}
    result = _run(command, env, tmp_path)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(message), lines
    assert lines[1].startswith("hint: ")


def test_a_login_storm_does_not_stall_other_endpoints(tmp_path, serve) -> None:
    # A costly hash: if it ran on the event loop, /healthz would wait behind the logins.
    env = {"USERSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'storm.sqlite3'}", "USERSVC_JWT_SECRET": "s" * 40,
           "USERSVC_HASH_TIME_COST": "10", "USERSVC_HASH_MEMORY_KIB": "32768", "USERSVC_HASH_THREADS": "2"}  # fmt: skip
    assert _run(["seed", "--count", "1"], env, tmp_path).returncode == 0
    server = serve(tmp_path, env)
    body = {"email": seed_email(0), "password": SEED_PASSWORD}

    async def storm() -> tuple[float, list[float]]:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=60) as logins,
            httpx.AsyncClient(base_url=server.base_url, timeout=60) as probes,
        ):
            start = time.perf_counter()
            assert (await logins.post("/auth/login", json=body)).status_code == 200
            hash_s = time.perf_counter() - start
            tasks = [asyncio.create_task(logins.post("/auth/login", json=body)) for _ in range(8)]
            await asyncio.sleep(hash_s / 4)  # the logins are hashing now
            waits = []
            while not all(task.done() for task in tasks):
                start = time.perf_counter()
                assert (await probes.get("/healthz")).status_code == 200
                waits.append(time.perf_counter() - start)
                await asyncio.sleep(0.01)
            assert {task.result().status_code for task in tasks} == {200}
            return hash_s, waits

    hash_s, waits = asyncio.run(storm())
    assert len(waits) >= 3, (hash_s, waits)
    # Eight hashes on two threads take about four hash-times; no probe waited for even half of one.
    assert max(waits) < hash_s / 2, (hash_s, sorted(waits))


def test_a_knob_naming_no_route_stops_the_start(tmp_path) -> None:
    """A mistyped route would inject nothing, and the regression the run is meant to show would never happen."""
    result = _run(["serve", "--port", "0"], {"USERSVC_KNOB_DELAY": "GET /nope=5;GET /users/{id}=1"}, tmp_path, 30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ")
    assert "GET /nope" in lines[0]
    assert "GET /users/{id}" not in lines[0]
    assert lines[1].startswith("hint: ")
    assert "GET /users/me" in lines[1]
