"""`perfci merge` on synthetic shard run directories: the refusals, and one family over every shard."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perfci.analysis import analyse
from perfci.cli import main
from perfci.errors import ExitCode
from perfci.model import (
    Arm,
    ArmInfo,
    Comparison,
    EndpointStats,
    RunFailure,
    RunInfo,
    StatsSettings,
    TrialInfo,
)
from perfci.rundir import COMPARISON_FILE, read_comparison, trial_dir, write_model
from tests.builders import environment

ENV = environment()
SETTINGS = StatsSettings()
BASE_COMMIT = "b" * 40
CANDIDATE_COMMIT = "c" * 40


def _config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "project_root": "/runner/work/project",
        "config_file": "/runner/work/project/pyproject.toml",
        "target": "process",
        "profile_name": "pr",
        "profile": {"trials": 8, "duration_s": 6.0, "warmup_s": 2.0, "users": 8},
        "scenarios": ["journeys"],
        "runs_dir": "/runner/work/project/.perfci/runs",
        "statistics": SETTINGS.model_dump(mode="json"),
        "slos": [],
    }
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        table = config
        for key in parents:
            table = table[key]
        table[leaf] = value
    return config


def _figures(p50: float, n: int = 400) -> EndpointStats:
    return EndpointStats(n=n, errors=0, p50=p50, p90=p50 * 1.6, p95=p50 * 2, p99=p50 * 2.6, mean=p50 * 1.2, rps=60.0)


def make_shard(
    root: Path,
    scenario: str,
    *,
    slowdown: float = 0.0,
    seed: int = 1,
    pairs: int = 8,
    candidate_commit: str = CANDIDATE_COMMIT,
    base_commit: str = BASE_COMMIT,
    profile: str = "pr",
    **config_changes: Any,
) -> Path:
    """A shard's run directory as `perfci run --ab main --scenario <scenario>` leaves it."""
    run_dir = root / f"shard-{scenario}-{seed}"
    rng = np.random.default_rng(seed)
    trials: dict[Arm, list[dict[str, EndpointStats]]] = {"base": [], "candidate": []}
    for index in range(pairs):
        level = 3.0 * math.exp(rng.normal(0, 0.1))
        pair = {
            "base": {"GET /a": _figures(level), "GET /b": _figures(2 * level)},
            "candidate": {
                "GET /a": _figures(level * (1 + slowdown) * math.exp(rng.normal(0, 0.03))),
                "GET /b": _figures(2 * level * math.exp(rng.normal(0, 0.03))),
            },
        }
        for arm in ("base", "candidate"):
            trials[arm].append(pair[arm])
            info = TrialInfo(
                scenario=scenario,
                arm=arm,
                index=index,
                started_at=datetime(2026, 12, 1, tzinfo=UTC),
                warmup_s=2,
                duration_s=6,
                users=8,
                achieved_rps=100.0,
                locust_exit_codes=[0],
                endpoints=pair[arm],
            )
            write_model(trial_dir(run_dir, scenario, arm, index) / "trial.json", info)
    config = _config(scenarios=[scenario], **config_changes)
    write_model(
        run_dir / "run.json",
        RunInfo(
            label=f"ab-main-{scenario}",
            created_at=datetime(2026, 12, 1, tzinfo=UTC),
            command=["perfci", "run"],
            config=config,
            environment=ENV,
            candidate_commit=candidate_commit,
            base_ref="main",
            base_commit=base_commit,
        ),
    )
    settings = StatsSettings.model_validate(config["statistics"])
    result = analyse.compare_scenario(
        scenario, trials["base"], trials["candidate"], mode="ab", settings=settings, slos=[], schedule="concurrent"
    )
    comparison = Comparison(
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        mode="ab",
        base=ArmInfo(label=f"main@{base_commit[:7]}", ref="main", commit=base_commit, environment=ENV),
        candidate=ArmInfo(label=f"working tree@{candidate_commit[:7]}", commit=candidate_commit, environment=ENV),
        profile=profile,
        alpha=settings.alpha,
        power=settings.power,
        scenarios=[result],
        judged_tests=sum(1 for e in result.endpoints for m in e.metrics if m.metric != "error_rate"),
    )
    write_model(run_dir / COMPARISON_FILE, comparison)
    return run_dir


def test_merge_judges_every_shard_under_one_family_and_exits_like_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = make_shard(tmp_path, "journeys", slowdown=0.3, seed=1)
    quiet = make_shard(tmp_path, "search", seed=2)
    out = tmp_path / "merged"
    code = main(["merge", str(slow), str(quiet), "--output", str(out)])
    assert code == ExitCode.REGRESSION
    merged = read_comparison(out)
    assert [s.scenario for s in merged.scenarios] == ["journeys", "search"]
    alone = [read_comparison(slow).judged_tests, read_comparison(quiet).judged_tests]
    assert merged.judged_tests == sum(alone) == 8  # p50 and p95 of two endpoints in each shard
    # The slowed endpoint's p-value is adjusted over all 8 tests, no longer over its shard's 4.
    shard_p = {m.metric: m.p_adjusted for m in read_comparison(slow).scenarios[0].endpoints[0].metrics}
    merged_p = {m.metric: m.p_adjusted for m in merged.scenarios[0].endpoints[0].metrics}
    assert merged_p["p50"] > shard_p["p50"]
    assert merged.scenarios[0].endpoints[0].verdict == "regression"
    for name in ("comparison.json", "report.md", "report.html", "run.json"):
        assert (out / name).is_file()
    assert json.loads((out / "run.json").read_text())["config"]["scenarios"] == ["journeys", "search"]
    assert "Per-PR false-fail rate held to 1 % across 8 judged tests" in (out / "report.md").read_text()
    assert "journeys" in capsys.readouterr().out  # the summary table is printed


def test_merge_of_quiet_shards_exits_0(tmp_path: Path) -> None:
    shards = [make_shard(tmp_path, "journeys", seed=3), make_shard(tmp_path, "search", seed=4)]
    assert main(["merge", *map(str, shards), "--output", str(tmp_path / "out")]) == ExitCode.OK


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"candidate_commit": "d" * 40}, "candidate commit", id="candidate-commit"),
        pytest.param({"base_commit": "e" * 40}, "base commit", id="base-commit"),
        pytest.param({"profile": "full"}, "profile", id="profile"),
        pytest.param({"statistics__alpha": 0.05}, "statistics.alpha differs", id="config"),
        pytest.param({"profile__duration_s": 30.0}, "profile.duration_s differs", id="profile-settings"),
    ],
)
def test_merge_refuses_shards_of_different_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], message: str
) -> None:
    one = make_shard(tmp_path, "journeys")
    other = make_shard(tmp_path, "search", **changes)
    code = main(["merge", str(one), str(other), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert message in err
    assert "hint: merge the shards of one workflow run" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_merge_refuses_a_scenario_present_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, again = make_shard(tmp_path, "journeys", seed=1), make_shard(tmp_path, "journeys", seed=2)
    assert main(["merge", str(one), str(again), "--output", str(tmp_path / "out")]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "error: scenario journeys is in two shards" in err
    assert "hint: give each scenario to one shard only" in err


def test_merge_refuses_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = make_shard(tmp_path, "journeys")
    (tmp_path / "empty").mkdir()
    assert main(["merge", str(one), str(tmp_path / "empty"), "--output", str(tmp_path / "out")]) == ExitCode.USAGE
    assert "run.json does not exist" in capsys.readouterr().err


def test_merge_refuses_a_shard_whose_trials_were_not_uploaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = make_shard(tmp_path, "journeys"), make_shard(tmp_path, "search", seed=2)
    for trial in (two / "search").glob("candidate-*"):
        (trial / "trial.json").unlink()
    assert main(["merge", str(one), str(two), "--output", str(tmp_path / "out")]) == ExitCode.USAGE
    assert "its folders hold 8 and 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_merge_refuses_to_write_into_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = make_shard(tmp_path, "journeys")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep me")
    assert main(["merge", str(one), "--output", str(tmp_path / "out")]) == ExitCode.USAGE
    assert "is not empty" in capsys.readouterr().err


def _failed_shard(root: Path, scenario: str) -> Path:
    """A shard whose run ended without a verdict: its comparison carries the failure and no scenario."""
    run_dir = make_shard(root, scenario, seed=9)
    comparison = read_comparison(run_dir).model_copy(
        update={
            "scenarios": [],
            "failure": RunFailure(
                kind="service_exited",
                message=f"the service exited during trial 3 of scenario {scenario} (candidate arm, exit code -9)",
                hint="look at the service's log",
            ),
        }
    )
    write_model(run_dir / COMPARISON_FILE, comparison)
    return run_dir


def test_a_shard_without_a_verdict_makes_the_merge_a_failure_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet, failed = make_shard(tmp_path, "journeys", seed=3), _failed_shard(tmp_path, "search")
    out = tmp_path / "out"
    code = main(["merge", str(quiet), str(failed), "--output", str(out), "--expect", "journeys", "--expect", "search"])
    assert code == ExitCode.INFRASTRUCTURE
    merged = read_comparison(out)
    assert merged.scenarios == []
    assert merged.failure is not None
    assert merged.failure.message.startswith(f"shard {failed.name}: the service exited during trial 3 of scenario")
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "no verdict" in report
    assert "regression" not in report.lower()
    assert "error: shard" in capsys.readouterr().err


def test_a_shard_that_ended_on_an_error_before_its_comparison_is_a_failure(tmp_path: Path) -> None:
    quiet = make_shard(tmp_path, "journeys", seed=3)
    broken = tmp_path / "shard-search"
    broken.mkdir()
    (broken / "error.txt").write_text("error: the service did not boot\nhint: read its log\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["merge", str(quiet), str(broken), "--output", str(out)]) == ExitCode.INFRASTRUCTURE
    failure = read_comparison(out).failure
    assert failure is not None
    assert failure.kind == "shard"
    assert failure.message == "shard shard-search wrote no comparison: error: the service did not boot"


@pytest.mark.parametrize("present", [["journeys"], []], ids=["one-missing", "all-missing"])
def test_a_planned_scenario_that_no_shard_brought_is_a_failure(tmp_path: Path, present: list[str]) -> None:
    shards = [str(make_shard(tmp_path, name, seed=3)) for name in present]
    out = tmp_path / "out"
    code = main(["merge", *shards, "--output", str(out), "--expect", "journeys", "--expect", "search"])
    assert code == ExitCode.INFRASTRUCTURE
    failure = read_comparison(out).failure
    assert failure is not None
    assert failure.kind == "shard"
    missing = "search" if present else "journeys, search"
    assert failure.message.startswith(f"no shard measured {missing}")
    assert "no verdict" in (out / "report.md").read_text(encoding="utf-8")
