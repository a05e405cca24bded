"""Stored baselines end to end: `perfci baseline` writes them, `perfci run` compares against them or says why not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from perfci import baselines
from perfci.cli import main
from perfci.errors import ExitCode
from perfci.model import Comparison

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "journeys"
# A committed file: tiny per-trial figures and a compact histogram per endpoint, never raw samples.
MAX_BASELINE_BYTES = 40_000

PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "tiny"
scenarios = ["journeys"]
runs_dir = "runs"
baselines_dir = "baselines"

[tool.perfci.service]
service_dir = "{service_dir}"
seed_users = 300
env = {{ USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }}

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
    (root / "pyproject.toml").write_text(PYPROJECT.format(service_dir=REPO / "service"), encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def _perfci(project: Path, command: str, *extra: str) -> int:
    return main([command, "--config", str(project / "pyproject.toml"), "--no-progress", *extra])


def _latest(project: Path) -> Comparison:
    run_dir = max((d for d in (project / "runs").iterdir() if d.is_dir()), key=lambda d: d.name)
    return Comparison.model_validate_json((run_dir / "comparison.json").read_text(encoding="utf-8"))


def test_baseline_then_run_compares_against_it_and_names_environment_differences(project: Path) -> None:
    assert _perfci(project, "baseline") in (ExitCode.OK, ExitCode.REGRESSION)

    path = project / "baselines" / f"{SCENARIO}.json"
    assert 0 < path.stat().st_size < MAX_BASELINE_BYTES
    stored = baselines.load_baseline(project / "baselines", SCENARIO)
    assert stored is not None
    assert stored.profile == "tiny"
    assert "GET /users/me" in stored.endpoints
    assert all(len(e.trials) == 2 for e in stored.endpoints.values() if e.trials[0].n >= 20)
    history = baselines.read_history(project / "baselines", SCENARIO)
    assert len(history) == 1
    assert history[0].git_commit == stored.git_commit
    assert set(history[0].endpoints) == set(stored.endpoints)

    # As if main had been measured on another runner: the next run must say so next to its verdicts.
    moved = stored.model_copy(
        update={"environment": stored.environment.model_copy(update={"cpu_model": "Other CPU 9000", "cores": 64})}
    )
    baselines.write_baseline(project / "baselines", moved)
    code = _perfci(project, "run")

    comparison = _latest(project)
    assert comparison.mode == "baseline"
    (scenario,) = comparison.scenarios
    assert scenario.mode == "baseline"
    assert scenario.base_trials == 2
    assert comparison.base is not None
    assert comparison.base.commit == stored.git_commit
    differences = scenario.environment_differences
    assert len(differences) == 2, differences
    assert any(d.startswith("cpu_model: Other CPU 9000 (baseline)") for d in differences)
    assert any(d.startswith("cores: 64 (baseline)") for d in differences)
    assert code == (ExitCode.OK if comparison.passed else ExitCode.REGRESSION)
    # The run compared, and did not refresh: the stored file and the history are as they were.
    assert baselines.load_baseline(project / "baselines", SCENARIO) == moved
    assert len(baselines.read_history(project / "baselines", SCENARIO)) == 1


def test_corrupt_baseline_is_exit_2_naming_the_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "baselines" / f"{SCENARIO}.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"schema_version": 1, "scenario": SCENARIO, "endpoints": "oops"}), encoding="utf-8")

    code = _perfci(project, "run", "--trials", "1")

    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"error: {path} is not a valid baseline" in err
    assert "hint: " in err


def test_missing_baseline_reports_absolute_figures_and_passes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _perfci(project, "run", "--trials", "1")

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
