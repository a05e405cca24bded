"""Stored baselines end to end: `perfci baseline` writes a testbed's record, `perfci run --against-baseline`
compares against it on the same testbed, shows another testbed's beside the run, or says why not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from perfci import testbed
from perfci.analysis import baselines
from perfci.cli import main
from perfci.errors import ExitCode
from perfci.model import Comparison
from tests.builders import userservice_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "journeys"
# A committed file: tiny per-trial figures and a compact histogram per endpoint, never raw samples.
MAX_BASELINE_BYTES = 40_000

PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "tiny"
default_scenarios = ["journeys"]
runs_dir = "runs"
baselines_dir = "baselines"

[tool.perfci.service]
seed_users = 300
env = { USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }

[tool.perfci.profiles.tiny]
trials = 2
duration_s = 3
warmup_s = 1
users = 6
spawn_rate = 50
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway project that runs the real service in place and a copy of the scenarios."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "scenarios", root / "scenarios", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pyproject.toml").write_text(PYPROJECT + userservice_tables(), encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def _perfci(project: Path, command: str, *extra: str) -> int:
    return main([command, "--config", str(project / "pyproject.toml"), "--no-progress", *extra])


def _latest(project: Path) -> Comparison:
    run_dir = max((d for d in (project / "runs").iterdir() if d.is_dir()), key=lambda d: d.name)
    return Comparison.model_validate_json((run_dir / "comparison.json").read_text(encoding="utf-8"))


def test_baseline_then_run_compares_on_this_testbed_and_only_shows_another(project: Path) -> None:
    assert _perfci(project, "baseline") in (ExitCode.OK, ExitCode.REGRESSION)

    (path,) = (project / "baselines").glob(f"*/{SCENARIO}.json")
    home = path.parent
    assert 0 < path.stat().st_size < MAX_BASELINE_BYTES
    stored = baselines.load_baseline(home, SCENARIO)
    assert stored is not None
    assert home.name == testbed.testbed_id(stored.environment)
    assert stored.profile == "tiny"
    assert "GET /users/me" in stored.endpoints
    assert all(len(e.trials) == 2 for e in stored.endpoints.values() if e.trials[0].n >= 20)
    history = baselines.read_history(home, SCENARIO)
    assert len(history) == 1
    assert history[0].git_commit == stored.git_commit
    assert set(history[0].endpoints) == set(stored.endpoints)

    code = _perfci(project, "run", "--against-baseline")

    comparison = _latest(project)
    assert comparison.mode == "baseline"  # the same machine: judged
    (scenario,) = comparison.scenarios
    assert scenario.base_trials == 2
    assert scenario.environment_differences == []
    assert code == (ExitCode.OK if comparison.passed else ExitCode.REGRESSION)
    # The run compared, and did not refresh: the stored file and the history are as they were.
    assert baselines.load_baseline(home, SCENARIO) == stored
    assert len(baselines.read_history(home, SCENARIO)) == 1

    # As if main had been measured only on another runner: figures side by side, no verdicts, exit 0.
    moved = stored.model_copy(
        update={"environment": stored.environment.model_copy(update={"cpu_model": "Other CPU 9000", "cores": 64})}
    )
    shutil.rmtree(home)
    baselines.write_baseline(baselines.testbed_home(project / "baselines", moved.environment), moved)

    code = _perfci(project, "run", "--against-baseline")

    comparison = _latest(project)
    assert comparison.mode == "none"
    assert comparison.not_comparable is not None
    assert comparison.not_comparable.startswith("measured on cpu_model Other CPU 9000, cores 64; this is")
    (scenario,) = comparison.scenarios
    assert all(e.verdict == "no_change" and not e.metrics for e in scenario.endpoints)
    assert all(e.base_stats is not None for e in scenario.endpoints if e.endpoint in moved.endpoints)
    assert any(d.startswith("cpu_model: Other CPU 9000 (baseline)") for d in scenario.environment_differences)
    assert code == ExitCode.OK


def test_corrupt_baseline_is_exit_2_naming_the_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "baselines" / "another-cpu-2c-process-12345678" / f"{SCENARIO}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": 1, "scenario": SCENARIO, "endpoints": "oops"}), encoding="utf-8")

    code = _perfci(project, "run", "--against-baseline", "--trials", "1")

    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"error: {path} is not a valid baseline" in err
    assert "hint: " in err


def test_missing_baseline_reports_absolute_figures_and_passes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _perfci(project, "run", "--against-baseline", "--trials", "1")

    comparison = _latest(project)
    assert comparison.mode == "none"
    assert comparison.base is None
    (scenario,) = comparison.scenarios
    assert any(n.startswith(f"no baseline for {SCENARIO}") for n in scenario.notes)
    assert all(e.verdict == "no_change" for e in scenario.endpoints)
    assert "GET /users/me" in {e.endpoint for e in scenario.endpoints}
    assert comparison.passed
    assert code == ExitCode.OK
    assert f"no baseline for {SCENARIO}" in capsys.readouterr().err
