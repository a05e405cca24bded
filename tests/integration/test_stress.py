"""A tiny real stress: Locust steps against the real user service (process target, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from perfci.config import Config, load_config
from perfci.measure.stress import StressPlan, read_stress, stress_scenario
from perfci.model import SloSpec
from perfci.targets.base import Target
from perfci.targets.process import process_target
from tests.builders import userservice_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("perfci.measure.load", reason="perfci.measure.load (run_trial) is not in this checkout yet")

REPO = Path(__file__).resolve().parents[2]
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(REPO / "pyproject.toml", environ={}, overrides={"service.seed_users": 50})


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    spec = userservice_spec(env=FAST_HASH, seed_users=50)
    with process_target(spec, tmp_path_factory.mktemp("service")) as booted:
        yield booted


def test_steps_rise_stay_within_budget_and_match_their_samples(config: Config, target: Target, tmp_path: Path) -> None:
    plan = StressPlan(start=2, maximum=64, step_s=3, settle_s=1, stop_timeout_s=1, bisect_steps=0, max_duration_s=25)
    run = stress_scenario(config, target, tmp_path, "journeys", plan)

    assert run.elapsed_s <= 25
    steps = run.breaking_point.steps
    assert len(steps) >= 2
    assert [s.offered for s in steps] == sorted(s.offered for s in steps)
    assert all(s.requests > 0 and s.achieved_rps > 0 for s in steps)
    first = pd.read_parquet(tmp_path / "journeys" / "stress-0" / "samples.parquet")
    window = first[(first["start_s"] >= 1.0) & (first["start_s"] < 4.0)]
    assert steps[0].requests == len(window)
    assert read_stress(tmp_path, "journeys") == run


def test_an_impossible_slo_breaks_at_the_first_step_and_stops(config: Config, target: Target, tmp_path: Path) -> None:
    strict = config.model_copy(update={"slos": [SloSpec(endpoint="POST /auth/login", p95_ms=0.01)]})
    plan = StressPlan(start=4, maximum=64, step_s=3, settle_s=1, stop_timeout_s=1, max_duration_s=30)
    run = stress_scenario(strict, target, tmp_path, "auth", plan)

    result = run.breaking_point
    assert len(result.steps) == 1
    assert result.first_failure is not None
    assert result.first_failure.breach.endpoint == "POST /auth/login"
    assert result.first_failure.breach.limit_name == "p95"
    assert result.max_rps_within_slo is None
    assert run.stop_reason.startswith("broke at 4: POST /auth/login p95")
