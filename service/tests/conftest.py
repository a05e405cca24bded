"""Fixtures: the app in-process on SQLite and on a fresh PostgreSQL database, with a cheap argon2 cost."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import text
from userservice.app import create_app
from userservice.settings import Settings

TEST_SECRET = "test-secret-" + "x" * 40
# argon2's cheapest settings: the tests are about behaviour, not the deliberate cost of hashing.
FAST_HASH = {"hash_time_cost": 1, "hash_memory_kib": 64, "hash_parallelism": 1}
POSTGRES_ENV = "PERFCI_TEST_DATABASE_URL"
PASSWORD = "correct horse battery"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named database for this test session, dropped at the end."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    import psycopg
    from psycopg import sql

    admin = urlunsplit(urlsplit(server)._replace(scheme="postgresql"))
    name = f"userservice_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'users.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url, "jwt_secret": TEST_SECRET, **FAST_HASH}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _empty_tables(app_state: object) -> None:
    engine = app_state.engine  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE users, token_families, refresh_tokens RESTART IDENTITY CASCADE"))


class Service:
    """An app instance with its client; `settings` is what it runs with."""

    def __init__(self, app: object, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app = app
        self.client = client
        self.settings = settings

    async def register(self, email: str, password: str = PASSWORD, name: str = "Test User") -> int:
        body = {"email": email, "password": password, "display_name": name}
        response = await self.client.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        user_id: int = response.json()["id"]
        return user_id

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.client.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        tokens: dict[str, str] = response.json()
        return tokens

    @staticmethod
    def bearer(tokens: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@asynccontextmanager
async def start_service(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # The PostgreSQL database lives for the session: each test starts from empty tables.
        await _empty_tables(app.state)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://userservice.test") as client:
            yield Service(app, client, settings)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    async with start_service(make_settings(database_url)) as running:
        yield running


Launch = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
def launch(database_url: str) -> Launch:
    """Start a service with settings of the test's own: `async with launch(refresh_token_ttl_s=1) as s:`."""

    def start(**overrides: object) -> AbstractAsyncContextManager[Service]:
        return start_service(make_settings(database_url, **overrides))

    return start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def start_live_server(workdir: Path, env: dict[str, str], *args: str, timeout_s: float = 30) -> LiveServer:
    """`python -m userservice serve` on a free port, waited for until /readyz answers.

    The environment holds no USERSVC_* but a cheap hash and `env`.
    """
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("USERSVC_")}
    environment |= {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "64", "USERSVC_HASH_PARALLELISM": "1"}
    environment |= env
    log_path = workdir / "service.log"
    command = [sys.executable, "-m", "userservice", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited with {process.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_live_server(server)
    raise AssertionError(f"service not ready after {timeout_s} s: {log_path.read_text()}")


def stop_live_server(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real uvicorn serving on SQLite, shared by a module's tests."""
    workdir = tmp_path_factory.mktemp("live")
    env = {"USERSVC_DATABASE_URL": f"sqlite:///{workdir / 'users.sqlite3'}", "USERSVC_JWT_SECRET": TEST_SECRET}
    server = start_live_server(workdir, env)
    try:
        yield server
    finally:
        stop_live_server(server)


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """Start real servers (`serve(workdir, env, *args)`); all of them stop when the test ends."""
    started: list[LiveServer] = []

    def start(workdir: Path, env: dict[str, str], *args: str) -> LiveServer:
        server = start_live_server(workdir, env, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_live_server(server)
