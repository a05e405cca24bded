"""Shared load-test fixtures: the real service as a process target, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfci.measure.load import TrialSpec
from perfci.targets.base import Target
from perfci.targets.process import process_target
from tests.builders import userservice_spec

REPO = Path(__file__).resolve().parents[2]
SERVICE_DIR = REPO / "service"
SCENARIOS_DIR = REPO / "scenarios"
LOAD_SEED_USERS = 300
# Cheap hashing keeps seeding and login-heavy scenarios fast; the auth scenario still exercises the path.
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}


def _boot(workdir: Path, database_url: str | None) -> Iterator[Target]:
    spec = userservice_spec(database_url=database_url, env=FAST_HASH, seed_users=LOAD_SEED_USERS)
    with process_target(spec, workdir) as target:
        yield target


@pytest.fixture(scope="session")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One service on SQLite, seeded with LOAD_SEED_USERS users, shared by every load test."""
    yield from _boot(tmp_path_factory.mktemp("sqlite-service"), None)


@pytest.fixture(scope="session")
def postgres_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The same on a fresh PostgreSQL database from PERFCI_TEST_DATABASE_URL; skipped when it is unset."""
    url = os.environ.get("PERFCI_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PERFCI_TEST_DATABASE_URL is not set: no PostgreSQL to load")
    yield from _boot(tmp_path_factory.mktemp("postgres-service"), url)


class SpecFactory:
    """Short trials: a 1-s warm-up and a few measured seconds keep each real Locust run near 5 s."""

    def __call__(self, scenario: str, locustfile: Path | None = None, **changes: Any) -> TrialSpec:
        values: dict[str, Any] = {
            "scenario": scenario,
            "locustfile": locustfile or SCENARIOS_DIR / f"{scenario}.py",
            "arm": "candidate",
            "index": 0,
            "users": 4,
            "spawn_rate": 20.0,
            "warmup_s": 1.0,
            "duration_s": 3.0,
            "stop_timeout_s": 3.0,
            "extra_env": {"PERFCI_SEED_USERS": str(LOAD_SEED_USERS)},
        }
        values.update(changes)
        return TrialSpec(**values)


@pytest.fixture(scope="session")
def trial_spec() -> SpecFactory:
    return SpecFactory()
