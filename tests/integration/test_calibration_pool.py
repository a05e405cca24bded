"""The A/A pool end to end: a real concurrent A/A run is added to calibration/pool and estimated from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perfci import testbed
from perfci.analysis.pool import POOL_DIR, read_pool
from perfci.cli import main
from tests.builders import userservice_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "tiny"
default_scenarios = ["journeys"]
runs_dir = "runs"

[tool.perfci.service]
seed_users = 300
env = { USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }

[tool.perfci.profiles.tiny]
trials = 2
duration_s = 2
warmup_s = 1
users = 4
spawn_rate = 50
ab_schedule = "concurrent"
"""


def test_grow_pool_keeps_per_trial_statistics_of_a_real_a_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios", ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "pyproject.toml"
    config.write_text(PYPROJECT + userservice_tables(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    code = main(["calibrate", "--grow-pool", "--config", str(config), "--no-progress", "--note", "test run"])

    assert code == 0
    (run,) = read_pool(tmp_path / POOL_DIR)
    (path,) = (tmp_path / POOL_DIR).glob("*/*.json")
    assert path.parent.name == run.testbed == testbed.testbed_id(run.environment)
    assert path.stat().st_size < 20_000
    assert run.schedule == "concurrent"
    assert run.note == "test run"
    assert run.load_average is not None
    assert run.pairs == 2
    pair = run.scenarios["journeys"][0]
    assert "GET /users/me" in pair.base
    assert "GET /users/me" in pair.candidate
    assert str(path) in capsys.readouterr().out

    assert main(["calibrate", "--from-pool", "--config", str(config)]) == 0
    assert "1 comparison from 1 run)" in capsys.readouterr().out
