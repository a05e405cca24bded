"""Rates with exact intervals, the A/A pool on disk, and estimates from disjoint blocks of it."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from perfci.analysis.calibration_estimate import Rate, blocks, clopper_pearson, estimate, render_estimate
from perfci.analysis.pool import PoolRun, build_pool_run, read_pool, write_pool_run
from perfci.config import Config, load_config
from perfci.errors import DataError
from perfci.model import EndpointStats
from tests.builders import environment

PROBE = "GET /users/me"
OTHER = "GET /users"
ENV = environment(runner_os="Linux 6.8.0", cpu_idle="not held")


@pytest.mark.parametrize(("k", "n"), [(0, 10), (9, 10), (10, 10), (1, 20), (3, 299), (0, 299), (50, 100)])
def test_clopper_pearson_agrees_with_scipy(k: int, n: int) -> None:
    interval = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((interval.low, interval.high), abs=1e-12)


def test_the_reviews_figures() -> None:
    assert clopper_pearson(0, 10)[1] == pytest.approx(0.308, abs=5e-4)
    assert clopper_pearson(9, 10)[0] == pytest.approx(0.555, abs=5e-4)
    assert clopper_pearson(0, 299)[1] < 0.0124  # 299 clean A/A runs bound the rate near 1 %
    assert Rate(0, 10, 2).describe() == "0/10 = 0.0% (95 % CI 0.0%-30.8%; 10 comparisons from 2 runs)"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.perfci]\nprofile = "cal"\n[tool.perfci.profiles.cal]\n'
        "trials = 4\nduration_s = 6\nwarmup_s = 1\nusers = 8\nspawn_rate = 10\n",
        encoding="utf-8",
    )
    return load_config(path, environ={})


def _figures(rng: random.Random, p50: float, shared: float, n: int = 400) -> EndpointStats:
    centre = p50 * shared * rng.lognormvariate(0, 0.01)
    return EndpointStats(
        n=n, errors=0, p50=centre, p90=centre * 1.8, p95=centre * 2.2, p99=centre * 3, mean=centre * 1.2, rps=60.0
    )


def _run(seed: int, pairs: int, day: int = 1) -> PoolRun:
    rng = random.Random(seed)
    trials: dict[str, dict[str, list[dict[str, EndpointStats]]]] = {"journeys": {"base": [], "candidate": []}}
    for _ in range(pairs):
        shared = rng.lognormvariate(0, 0.2)  # the host's swing hits both arms of a pair alike
        for arm in ("base", "candidate"):
            trials["journeys"][arm].append({PROBE: _figures(rng, 2.0, shared), OTHER: _figures(rng, 3.0, shared)})
    return build_pool_run(
        environment=ENV,
        profile="cal",
        schedule="concurrent",
        duration_s=6,
        users=8,
        trials=trials,
        note="synthetic",
        created_at=datetime(2026, 12, day, 12, tzinfo=UTC),
        load_average=0.5,
    )


def test_a_pool_run_round_trips_one_file_per_run_and_day(tmp_path: Path) -> None:
    first, second = _run(1, 6), _run(2, 6)

    paths = [write_pool_run(tmp_path, first), write_pool_run(tmp_path, second)]

    testbed = first.testbed
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        f"{testbed}/20261201-01.json",
        f"{testbed}/20261201-02.json",
    ]
    assert read_pool(tmp_path) == [first, second]
    assert read_pool(tmp_path, "another-testbed") == []
    assert all(p.stat().st_size < 20_000 for p in paths)  # statistics per trial only: small files
    assert first.pairs == 6


def test_a_corrupt_pool_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    path = write_pool_run(tmp_path, _run(1, 2))
    path.write_text(json.dumps({"schema_version": 1, "scenarios": "oops"}), encoding="utf-8")

    with pytest.raises(DataError, match=r"20261201-01\.json is not a valid pool run"):
        read_pool(tmp_path)


def test_blocks_are_disjoint_and_never_cross_runs() -> None:
    runs = [_run(1, 10), _run(2, 7)]

    chosen = blocks(runs, 4)

    assert [index for index, _ in chosen] == [0, 0, 1]  # 10 pairs: two blocks; 7 pairs: one
    first, second = chosen[0][1]["journeys"][0], chosen[1][1]["journeys"][0]
    assert first == [p.base for p in runs[0].scenarios["journeys"][0:4]]
    assert second == [p.base for p in runs[0].scenarios["journeys"][4:8]]


def test_estimate_counts_false_fails_on_a_a_and_finds_exact_shifts(config: Config) -> None:
    runs = [_run(seed, 16, day=1 + seed % 3) for seed in range(6)]

    # Blocks of 8 pairs: the rule tests beyond the minimum effect, which 4 pairs (df 3) can hardly do.
    result = estimate(config, runs, 8, "journeys", PROBE)

    assert result.false_fail.comparisons == 12
    assert result.runs == 6
    assert result.false_fail.count <= 1  # seeded pairs with a shared swing and 1 % own noise: quiet
    assert result.improvement_alarm.count <= 1
    assert result.power["+10 % p50"].count >= 11  # 10 % against 1.4 % noise, 5 points beyond the minimum effect
    # +10 % p95 sits exactly at p95's minimum effect: the rule finds it no more often than alpha allows.
    assert result.power["+10 % p95"].count <= 1
    assert result.power["+5 % p50"].count <= result.power["+10 % p50"].count
    assert result.power["1 % errors"].count >= 6  # a new error kind that recurs in the candidate's trials
    assert all(r.count <= 2 for r in result.off_target.values())
    text = render_estimate(result, runs)
    assert "per-PR false fail" in text
    assert "12 comparisons from 6 runs" in text
    assert "load average 0.5-0.5" in text
    assert result.pair_count == 96  # every pair of the six runs
    assert result.pair_spread == pytest.approx(0.014, abs=0.005)  # two arms' 1 % noise, the shared swing cancels


def test_shifts_change_only_their_metric_on_their_endpoint() -> None:
    from perfci.analysis.calibration_estimate import INJECTED_ERROR, SHIFTS, shifted

    trials = [p.candidate for p in _run(3, 3).scenarios["journeys"]]
    by_name = {s.name: s for s in SHIFTS}

    p95 = shifted(trials, PROBE, by_name["+10 % p95"], random.Random(1))
    errors = shifted(trials, PROBE, by_name["1 % errors"], random.Random(1))

    for before, after in zip(trials, p95, strict=True):
        assert after[PROBE].p95 == pytest.approx(before[PROBE].p95 * 1.10)
        assert after[PROBE].p50 == before[PROBE].p50
        assert after[OTHER] == before[OTHER]
    injected = sum(t[PROBE].error_kinds.get(INJECTED_ERROR, 0) for t in errors)
    assert injected == sum(t[PROBE].errors for t in errors)
    assert 2 <= injected <= 30  # 1 % of 3 x 400 requests: 12 expected


def test_calibrate_from_pool_prints_every_rate_with_its_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfci.analysis.pool import POOL_DIR
    from perfci.cli import main

    (tmp_path / "pyproject.toml").write_text(
        '[tool.perfci]\nprofile = "cal"\n[tool.perfci.profiles.cal]\n'
        "trials = 4\nduration_s = 6\nwarmup_s = 1\nusers = 8\nspawn_rate = 10\n",
        encoding="utf-8",
    )
    for seed in range(3):
        write_pool_run(tmp_path / POOL_DIR, _run(seed, 8))
    monkeypatch.chdir(tmp_path)

    assert main(["calibrate", "--from-pool"]) == 0
    out = capsys.readouterr().out
    assert "3 runs on test-cpu-2c-process-" in out
    assert "6 comparisons from 3 runs" in out
    assert "95 % CI" in out

    assert main(["calibrate", "--from-pool", "--trials", "9"]) == 2  # no run has 9 pairs
    assert "no A/A run in" in capsys.readouterr().err
