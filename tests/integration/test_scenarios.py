"""Each scenario in a short real Locust trial against the real service: runs clean, labels are templates."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from perfci.measure.load import TrialSpec, run_trial
from perfci.targets.base import Target
from tests.builders import read_trial

pytestmark = pytest.mark.integration

Spec = Callable[..., TrialSpec]
# The endpoints each scenario must reach in a few seconds (rarer tasks may or may not show up).
EXPECTED = {
    "journeys": {"POST /auth/login", "GET /users/me", "GET /users/{id}", "GET /users"},
    "auth": {"POST /auth/login", "POST /auth/register"},
    "sessions": {"POST /auth/login", "GET /users/me", "POST /auth/refresh", "POST /auth/refresh [race]"},
    "search": {"GET /users"},
    "open": {"GET /users/me", "GET /users/{id}", "GET /users"},
}
# Failures the service is not to blame for stay at zero; a few 404s of deleted ids are handled by the scenario.
MAX_ERROR_SHARE = 0.01
# Refresh every second instead of every 5, so a 4-s trial refreshes under load.
SCENARIO_ENV = {"sessions": {"PERFCI_REFRESH_EVERY_S": "1"}}


def spec_for(trial_spec: Spec, scenario: str, seed_users: int) -> TrialSpec:
    env = {"PERFCI_SEED_USERS": str(seed_users), **SCENARIO_ENV.get(scenario, {})}
    return trial_spec(scenario, target_rps=30.0 if scenario == "open" else None, extra_env=env)


def check_trial(trial_dir: Path, scenario: str) -> None:
    info, samples = read_trial(trial_dir)
    assert info.locust_exit_codes == [0]
    assert not [flag for flag in info.flags if not flag.startswith("unreliable")], info.flags
    labels = set(samples["endpoint"])
    assert EXPECTED[scenario] <= labels, labels
    assert [label for label in labels if re.search(r"\d", label)] == []
    failed = samples[~samples["ok"]]
    assert len(failed) <= MAX_ERROR_SHARE * len(samples), failed["error"].value_counts().to_dict()
    assert info.endpoints
    assert all(stats.n > 0 and stats.p50 > 0 for stats in info.endpoints.values())


@pytest.mark.parametrize("scenario", ["journeys", "auth", "sessions", "search", "open"])
def test_scenario_on_sqlite(scenario: str, sqlite_service: Target, trial_spec: Spec, tmp_path: Path) -> None:
    run_trial(spec_for(trial_spec, scenario, sqlite_service.seed_users), sqlite_service, tmp_path)
    check_trial(tmp_path, scenario)


@pytest.mark.postgres
@pytest.mark.parametrize("scenario", ["journeys", "sessions"])
def test_scenario_on_postgres(scenario: str, postgres_service: Target, trial_spec: Spec, tmp_path: Path) -> None:
    info = run_trial(spec_for(trial_spec, scenario, postgres_service.seed_users), postgres_service, tmp_path)
    check_trial(tmp_path, scenario)
    # PostgreSQL counters of the trial: the load committed transactions.
    database = tmp_path / "database.json"
    assert database.is_file()
    assert '"xact_commit"' in database.read_text(encoding="utf-8")
    assert info.endpoints


def test_stress_steps_up_and_stops_by_itself(sqlite_service: Target, trial_spec: Spec, tmp_path: Path) -> None:
    seeded = str(sqlite_service.seed_users)
    steps = {"PERFCI_STRESS_STEPS": "1,4", "PERFCI_STRESS_STEP_S": "2", "PERFCI_SEED_USERS": seeded}
    # Run time well past the shape's 4 s: the shape, not --run-time, must end the test.
    spec = trial_spec("stress", warmup_s=0.0, duration_s=20.0, extra_env=steps)
    info = run_trial(spec, sqlite_service, tmp_path)
    _, samples = read_trial(tmp_path)

    assert info.locust_exit_codes == [0]
    assert samples["start_s"].max() < 6.0
    assert [label for label in set(samples["endpoint"]) if re.search(r"\d", label)] == []
    first, second = (samples[samples["start_s"].between(a, a + 2.0, inclusive="left")] for a in (0.0, 2.0))
    assert len(second) > len(first) > 0  # four users ask more than one
