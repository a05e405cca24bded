"""Shards and sequential looks end to end (real service, real Locust): shards merged, a run that looks twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfci.cli import main
from perfci.errors import ExitCode
from perfci.rundir import read_comparison
from tests.builders import git_project, userservice_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The smoke profile's size with two pairs, the fewest that have a spread to judge by.
PYPROJECT = """\
[tool.perfci]
target = "process"
profile = "smoke"
default_scenarios = ["journeys", "search"]
runs_dir = "runs"
baselines_dir = "baselines"

[tool.perfci.service]
seed_users = 200
env = { USERSVC_HASH_TIME_COST = "1", USERSVC_HASH_MEMORY_KIB = "8192" }

[tool.perfci.profiles.smoke]
trials = 2
duration_s = 3
warmup_s = 1
users = 4
spawn_rate = 20
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = git_project(
        tmp_path / "project", PYPROJECT + userservice_tables(workdir="service"), gitignore="runs/\nshards/\nmerged/\n"
    )
    monkeypatch.chdir(root)
    return root


def test_two_shards_run_separately_merge_into_one_judged_run(project: Path) -> None:
    shards = []
    for scenario in ("journeys", "search"):
        runs = project / "shards" / scenario
        argv = ["run", "--ab", "HEAD", "--scenario", scenario, "--runs-dir", str(runs), "--no-progress"]
        assert main(argv) in (ExitCode.OK, ExitCode.REGRESSION)
        (shard,) = runs.iterdir()
        shards.append(shard)

    merged_dir = project / "merged"
    code = main(["merge", *map(str, shards), "--output", str(merged_dir)])

    merged = read_comparison(merged_dir)
    assert code == (ExitCode.OK if merged.passed else ExitCode.REGRESSION)
    assert [s.scenario for s in merged.scenarios] == ["journeys", "search"]
    alone = [read_comparison(s) for s in shards]
    assert merged.judged_tests == sum(c.judged_tests for c in alone)
    # Same trials, same tests: only the family grew, so no adjusted p can fall.
    for own, joined in zip(alone, merged.scenarios, strict=True):
        before = {(e.endpoint, m.metric): m.p_adjusted for e in own.scenarios[0].endpoints for m in e.metrics}
        after = {(e.endpoint, m.metric): m.p_adjusted for e in joined.endpoints for m in e.metrics}
        assert after.keys() == before.keys()
        assert all(after[k] >= before[k] - 1e-12 for k in before)
        assert joined.resources == own.scenarios[0].resources
    assert merged.candidate.commit == alone[0].candidate.commit
    assert json.loads((merged_dir / "run.json").read_text())["config"]["scenarios"] == ["journeys", "search"]
    assert (merged_dir / "report.html").read_text().count("Scenario") >= 2
    assert "judged tests" in (merged_dir / "report.md").read_text()
    # The merged folder is a run directory like any other: the summary reads it back with the same verdict.
    assert main(["summary", str(merged_dir)]) == code


def test_a_sequential_run_looks_at_its_planned_points_and_says_why_it_stopped(project: Path) -> None:
    runs = project / "shards" / "sequential"
    argv = ["run", "--ab", "HEAD", "--scenario", "search", "--trials", "12", "--ab-schedule", "concurrent"]
    code = main([*argv, "--runs-dir", str(runs), "--no-progress"])
    (run_dir,) = runs.iterdir()
    comparison = read_comparison(run_dir)
    (scenario,) = comparison.scenarios
    assert code == (ExitCode.OK if comparison.passed else ExitCode.REGRESSION)
    assert scenario.looks == [8, 12]
    if scenario.candidate_trials == 8:
        assert scenario.stop_reason == "every judged test decided after 8 pairs"
    else:
        assert scenario.candidate_trials == 12
        assert scenario.stop_reason.startswith(("every judged test decided", "the budget of 12 pairs"))
    assert len(list((run_dir / "search").glob("candidate-*"))) == scenario.candidate_trials
    assert f"{scenario.candidate_trials} of up to 12 pairs" in (run_dir / "report.md").read_text()
