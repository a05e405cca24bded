"""The pipeline's pure steps: the comparison from measured trials (A/B, baseline, none), exit codes, helpers."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from perfci import pipeline, trial_figures, verdict
from perfci.analysis import baselines, compare_run, slo
from perfci.config import Config, load_config
from perfci.errors import ConfigError, DataError, ExitCode, NothingMeasuredError
from perfci.measure import suite
from perfci.measure.schedule import look, pair_orders, planned_looks, runs_concurrently
from perfci.model import Arm, EndpointStats, Environment, Histogram, SloSpec, TrialInfo
from perfci.trial_figures import histogram
from tests.builders import environment, scenario_tables

ME = "GET /users/me"
SEARCH = "GET /users"
ENV = environment(locust_version="2.40.0")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.perfci]\nprofile = "t"\ndefault_scenarios = ["journeys"]\n'
        + scenario_tables()
        + "[tool.perfci.profiles.t]\n"
        "trials = 5\nduration_s = 6\nwarmup_s = 1\nusers = 8\nspawn_rate = 10\n",
        encoding="utf-8",
    )
    return load_config(path, environ={})


def _figures(rng: random.Random, p50: float) -> EndpointStats:
    centre = p50 * rng.lognormvariate(0, 0.02)
    return EndpointStats(
        n=300, errors=0, p50=centre, p90=centre * 2, p95=centre * 2.5, p99=centre * 4, mean=centre * 1.3, rps=50.0
    )


def _trials(arm: Arm, seed: int, me_p50: float, flags: dict[int, str] | None = None) -> list[TrialInfo]:
    rng = random.Random(seed)
    return [
        TrialInfo(
            scenario="journeys",
            arm=arm,
            index=i,
            started_at=datetime(2025, 1, 1, tzinfo=UTC),
            warmup_s=1,
            duration_s=6,
            users=8,
            achieved_rps=100.0,
            locust_exit_codes=[0],
            flags=[(flags or {})[i]] if i in (flags or {}) else [],
            endpoints={ME: _figures(rng, me_p50), SEARCH: _figures(rng, 3.0)},
        )
        for i in range(5)
    ]


def _measured(arms: dict[Arm, list[TrialInfo]]) -> suite.Measured:
    hist = {ME: histogram([2.0, 2.1]), SEARCH: histogram([3.0])}
    return suite.Measured(
        trials={"journeys": arms},
        histograms={"journeys": dict.fromkeys(arms, hist)},
        targets={},
        environment=ENV,
    )


def _silent(_: str) -> None:
    pass


def test_ab_comparison_pairs_the_arms_and_labels_the_base(config: Config) -> None:
    measured = _measured(
        {"base": _trials("base", 1, 2.0), "candidate": _trials("candidate", 2, 2.6, flags={3: "missed its rate"})}
    )
    options = pipeline.RunOptions(ab_ref="main")

    comparison = compare_run.compare(config, options, measured, "c" * 40, "b" * 40, _silent)

    assert comparison.mode == "ab"
    assert comparison.base is not None
    assert comparison.base.label == "main@bbbbbbb"
    assert comparison.candidate.label == "working tree@ccccccc"
    (scenario,) = comparison.scenarios
    assert (scenario.mode, scenario.base_trials, scenario.candidate_trials) == ("ab", 5, 5)
    assert {e.endpoint: e.verdict for e in scenario.endpoints}[ME] == "regression"
    assert {e.endpoint: e.verdict for e in scenario.endpoints}[SEARCH] != "regression"
    assert scenario.flags == ["candidate trial 4: missed its rate"]
    assert verdict.exit_code(comparison) == ExitCode.REGRESSION


def test_without_a_baseline_the_comparison_is_absolute_and_passes(config: Config) -> None:
    said: list[str] = []
    measured = _measured({"candidate": _trials("candidate", 3, 2.0)})

    comparison = compare_run.compare(config, pipeline.RunOptions(), measured, None, None, said.append)

    assert comparison.mode == "none"
    assert comparison.base is None
    assert comparison.candidate.label == "working tree@unknown"
    assert any("no baseline for journeys" in line for line in said)
    assert verdict.exit_code(comparison) == ExitCode.OK


def _stored(environment: Environment, me_p50: float = 2.0) -> baselines.Baseline:
    return baselines.build_baseline(
        "journeys",
        profile="t",
        trials=[t.endpoints for t in _trials("candidate", 4, me_p50)],
        histograms={ME: histogram([2.0])},
        environment=environment,
        git_commit="a" * 40,
    )


def test_against_this_testbeds_baseline_the_comparison_is_unpaired_and_names_environment_changes(
    config: Config,
) -> None:
    # Another Locust version is the same testbed (it is no part of the fingerprint), but it is named.
    stored = _stored(ENV.model_copy(update={"locust_version": "2.47.0"}), me_p50=1.0)
    baselines.write_baseline(baselines.testbed_home(config.baselines_dir, ENV), stored)
    measured = _measured({"candidate": _trials("candidate", 5, 2.0)})

    comparison = compare_run.compare(config, pipeline.RunOptions(), measured, "c" * 40, None, _silent)

    assert comparison.mode == "baseline"
    assert comparison.not_comparable is None
    assert comparison.base is not None
    assert comparison.base.label == "main@aaaaaaa"
    (scenario,) = comparison.scenarios
    assert scenario.environment_differences == ["locust_version: 2.47.0 (baseline) vs 2.40.0 (this run)"]
    assert {e.endpoint: e.verdict for e in scenario.endpoints}[ME] == "regression"  # twice as slow: judged
    assert verdict.exit_code(comparison) == ExitCode.REGRESSION


def test_another_testbeds_baseline_is_shown_side_by_side_without_verdicts(config: Config) -> None:
    said: list[str] = []
    other = ENV.model_copy(update={"python": "3.12.1", "cpu_model": "Other CPU"})
    # Twice as fast as this run: judged, it would be a regression on every endpoint.
    baselines.write_baseline(baselines.testbed_home(config.baselines_dir, other), _stored(other, me_p50=1.0))
    measured = _measured({"candidate": _trials("candidate", 5, 2.0)})

    comparison = compare_run.compare(config, pipeline.RunOptions(), measured, "c" * 40, None, said.append)

    assert comparison.mode == "none"
    assert comparison.not_comparable == (
        "measured on cpu_model Other CPU, python 3.12; this is cpu_model Test CPU, python 3.11"
    )
    assert comparison.base is not None
    assert comparison.base.label == "main@aaaaaaa"
    (scenario,) = comparison.scenarios
    assert all(e.verdict == "no_change" and not e.metrics for e in scenario.endpoints)
    me = next(e for e in scenario.endpoints if e.endpoint == ME)
    assert me.base_stats is not None
    assert me.base_stats.p50 == pytest.approx(1.0, rel=0.05)
    assert me.candidate_stats.p50 == pytest.approx(2.0, rel=0.05)
    assert "not comparable" in scenario.notes[0]
    assert "`perfci run`" in scenario.notes[0]
    assert any("not comparable" in line for line in said)
    assert verdict.exit_code(comparison) == ExitCode.OK


def test_a_baseline_filed_under_the_wrong_testbed_is_judged_by_its_own_fingerprint(config: Config) -> None:
    other = ENV.model_copy(update={"cores": 64})
    baselines.write_baseline(baselines.testbed_home(config.baselines_dir, ENV), _stored(other, me_p50=1.0))
    measured = _measured({"candidate": _trials("candidate", 5, 2.0)})

    comparison = compare_run.compare(config, pipeline.RunOptions(), measured, "c" * 40, None, _silent)

    assert comparison.not_comparable == "measured on cores 64; this is cores 2"
    assert verdict.exit_code(comparison) == ExitCode.OK


def test_this_testbeds_baseline_wins_over_a_newer_one_of_another(config: Config) -> None:
    other = ENV.model_copy(update={"target_kind": "compose"})
    mine = _stored(ENV).model_copy(update={"created_at": datetime(2025, 1, 1, tzinfo=UTC)})
    baselines.write_baseline(baselines.testbed_home(config.baselines_dir, ENV), mine)
    baselines.write_baseline(baselines.testbed_home(config.baselines_dir, other), _stored(other))
    measured = _measured({"candidate": _trials("candidate", 5, 2.0)})

    comparison = compare_run.compare(config, pipeline.RunOptions(), measured, "c" * 40, None, _silent)

    assert comparison.mode == "baseline"
    assert comparison.base is not None
    assert comparison.base.created_at == mine.created_at


@pytest.mark.parametrize("folder", ["flat layout", "another testbed"])
def test_a_corrupt_stored_baseline_stops_the_comparison(config: Config, folder: str) -> None:
    home = config.baselines_dir if folder == "flat layout" else config.baselines_dir / "some-cpu-2c-process-12345678"
    path = baselines.baseline_path(home, "journeys")
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(DataError, match=r"journeys\.json is not valid JSON"):
        compare_run.compare(
            config, pipeline.RunOptions(), _measured({"candidate": _trials("candidate", 6, 2.0)}), None, None, _silent
        )


def test_baseline_trials_are_regrouped_per_trial_with_endpoints_missing_from_short_ones() -> None:
    trials = [t.endpoints for t in _trials("candidate", 7, 2.0)][:3]
    trials[2] = {ME: trials[2][ME]}  # the last trial never reached the search
    stored = baselines.build_baseline(
        "journeys", profile="t", trials=trials, histograms={}, environment=ENV, git_commit="a" * 40
    )

    regrouped = list(compare_run._baseline_trials(stored))

    assert len(regrouped) == 3
    assert [set(t) for t in regrouped] == [{ME, SEARCH}, {ME, SEARCH}, {ME}]
    assert regrouped[0][ME].p50 == pytest.approx(trials[0][ME].p50, rel=1e-5)  # stored to six digits


def test_histograms_pool_every_trial_window_per_endpoint() -> None:
    windows = [
        pd.DataFrame({"latency_ms": [1.0, 2.0], "endpoint": [ME, SEARCH]}),
        pd.DataFrame({"latency_ms": [3.0, 40.0, 41.0], "endpoint": [ME, ME, SEARCH]}),
    ]

    pooled: dict[str, Histogram] = trial_figures.pooled_histograms(windows)

    assert set(pooled) == {ME, SEARCH}
    assert sum(pooled[ME].counts) == 3
    assert sum(pooled[SEARCH].counts) == 2
    assert pooled[ME] == histogram([1.0, 3.0, 40.0])


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("pairs", [1, 2, 3, 4, 7, 8])
def test_pair_orders_put_each_arm_first_equally_often_within_every_two_pairs(seed: int, pairs: int) -> None:
    arms: list[Arm] = ["base", "candidate"]
    orders = pair_orders(arms, pairs, random.Random(seed))

    assert len(orders) == pairs
    assert all(sorted(order) == arms for order in orders)
    for block in range(0, pairs - 1, 2):
        assert orders[block] == orders[block + 1][::-1]
    firsts = [order[0] for order in orders]
    assert abs(firsts.count("base") - firsts.count("candidate")) <= 1


def test_pair_orders_are_random_per_block_and_reproducible_from_the_seed() -> None:
    arms: list[Arm] = ["base", "candidate"]
    seen = {tuple(o[0] for o in pair_orders(arms, 8, random.Random(seed))) for seed in range(200)}

    assert len(seen) == 2**4  # four blocks, each AB-BA or BA-AB
    assert pair_orders(arms, 8, random.Random(5)) == pair_orders(arms, 8, random.Random(5))


def test_a_single_arm_runs_once_per_trial() -> None:
    assert pair_orders(["candidate"], 3, random.Random(0)) == [["candidate"]] * 3


def test_a_concurrent_schedule_runs_closed_loop_scenarios_at_once_and_open_ones_interleaved(config: Config) -> None:
    assert not runs_concurrently(config, "journeys")  # interleaved unless asked
    concurrent = config.model_copy(update={"profile": config.profile.model_copy(update={"ab_schedule": "concurrent"})})
    assert runs_concurrently(concurrent, "journeys")
    assert not runs_concurrently(concurrent, "open")  # model = "open" in its table


def test_an_unknown_ab_schedule_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.perfci]\nprofile = "t"\n[tool.perfci.profiles.t]\ntrials = 5\nduration_s = 6\nwarmup_s = 1\n'
        'users = 8\nspawn_rate = 10\nab_schedule = "parallel"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="ab_schedule"):
        load_config(path, environ={})


def test_the_comparison_records_the_schedule_of_each_ab_scenario(config: Config) -> None:
    concurrent = config.model_copy(update={"profile": config.profile.model_copy(update={"ab_schedule": "concurrent"})})
    measured = _measured({"base": _trials("base", 1, 2.0), "candidate": _trials("candidate", 2, 2.0)})
    options = pipeline.RunOptions(ab_ref="main")
    for settings, schedule in ((config, "interleaved"), (concurrent, "concurrent")):
        comparison = compare_run.compare(settings, options, measured, "c" * 40, "b" * 40, _silent)
        assert [s.schedule for s in comparison.scenarios] == [schedule]


def test_a_slo_that_matched_no_endpoint_of_the_run_is_named_in_a_note(config: Config) -> None:
    slos = [SloSpec(endpoint="GET /user/me", p95_ms=100), SloSpec(endpoint=ME, p95_ms=100)]
    config = config.model_copy(update={"slos": slos})
    comparison = compare_run.compare(
        config, pipeline.RunOptions(), _measured({"candidate": _trials("candidate", 3, 2.0)}), None, None, _silent
    )

    (scenario,) = slo.with_unmatched_slo_notes(config, comparison).scenarios

    unmatched = [note for note in scenario.notes if "was not checked" in note]
    assert len(unmatched) == 1
    assert "SLO for GET /user/me was not checked" in unmatched[0]
    assert str(config.config_file) in unmatched[0]


def test_a_corrupt_stored_baseline_is_replaced_not_refused_by_perfci_baseline(config: Config) -> None:
    path = baselines.baseline_path(config.baselines_dir, "journeys")
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    said: list[str] = []

    comparison = compare_run.compare(
        config,
        pipeline.RunOptions(replaces_baselines=True),
        _measured({"candidate": _trials("candidate", 6, 2.0)}),
        None,
        None,
        said.append,
    )

    assert comparison.mode == "none"
    assert any("replacing an unusable baseline" in line and str(path) in line for line in said)


def test_a_run_that_measured_no_request_is_not_a_pass(tmp_path: Path) -> None:
    empty = [t.model_copy(update={"endpoints": {}}) for t in _trials("candidate", 1, 2.0)]
    with pytest.raises(NothingMeasuredError, match="measured no request"):
        suite.require_measurements(_measured({"candidate": empty}), tmp_path)
    suite.require_measurements(_measured({"candidate": _trials("candidate", 1, 2.0)}), tmp_path)


@pytest.mark.parametrize(("narrowed", "error"), [(False, True), (True, False)], ids=["whole-suite", "narrowed"])
def test_a_slo_that_matched_nothing_in_the_whole_suite_is_a_config_error(
    tmp_path: Path, narrowed: bool, error: bool
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.perfci]\nprofile = "t"\ndefault_scenarios = ["journeys"]\n'
        + scenario_tables()
        + "[tool.perfci.profiles.t]\n"
        "trials = 5\nduration_s = 6\nwarmup_s = 1\nusers = 8\nspawn_rate = 10\n"
        '[[tool.perfci.slo]]\nendpoint = "GET /user/me"\np95_ms = 100\n',
        encoding="utf-8",
    )
    config = load_config(path, environ={}, overrides={"default_scenarios": ["journeys"] if narrowed else None})
    comparison = compare_run.compare(
        config, pipeline.RunOptions(), _measured({"candidate": _trials("candidate", 3, 2.0)}), None, None, _silent
    )

    found = slo.unchecked_slo_error(config, comparison)

    assert (found is not None) is error
    if found is not None:
        assert "GET /user/me" in found.message
        assert str(path) in found.message
        assert "[[tool.perfci.slo]]" in found.hint


def _pairs(count: int, me_p50: float, seed: int) -> dict[Arm, list[TrialInfo]]:
    base = [*_trials("base", seed, 2.0), *_trials("base", seed + 1, 2.0)][:count]
    candidate = [*_trials("candidate", seed + 2, me_p50), *_trials("candidate", seed + 3, me_p50)][:count]
    return {"base": base, "candidate": candidate}


def test_the_sequential_plan_looks_at_8_12_16_pairs_up_to_the_profile_budget(config: Config) -> None:
    sixteen = config.model_copy(update={"profile": config.profile.model_copy(update={"trials": 16})})
    assert planned_looks(sixteen) == [8, 12, 16]
    assert planned_looks(config) == [5]  # a budget below the first look: one look


def test_a_look_stops_a_decided_scenario_and_names_the_budget_when_undecided(config: Config) -> None:
    looks = [8, 10]
    decided = look(config, "journeys", _pairs(8, 2.0, 1), looks)
    assert decided == "every judged test decided after 8 pairs"
    noisy = _pairs(8, 2.0, 1)
    noisy["candidate"] = [
        t.model_copy(update={"endpoints": {k: v.model_copy(update={"p50": v.p50 * (1.3 if t.index % 2 else 0.75)})
                                           for k, v in t.endpoints.items()}})
        for t in noisy["candidate"]
    ]  # fmt: skip
    assert look(config, "journeys", noisy, looks) is None  # p50 undecided: measure more pairs
    noisy_ten = {arm: [*trials, *trials[:2]] for arm, trials in noisy.items()}
    assert look(config, "journeys", noisy_ten, looks) == (
        "the budget of 10 pairs was reached with some tests undecided"
    )


def test_the_comparison_records_the_plan_and_why_each_scenario_stopped(config: Config) -> None:
    sixteen = config.model_copy(update={"profile": config.profile.model_copy(update={"trials": 16})})
    measured = _measured(_pairs(8, 2.0, 1))
    measured = suite.Measured(
        measured.trials, measured.histograms, {}, ENV, stops={"journeys": "every judged test decided after 8 pairs"}
    )
    comparison = compare_run.compare(sixteen, pipeline.RunOptions(ab_ref="main"), measured, None, None, _silent)
    (scenario,) = comparison.scenarios
    assert scenario.looks == [8, 12, 16]
    assert scenario.stop_reason == "every judged test decided after 8 pairs"
    assert scenario.alpha_share == pytest.approx(0.027, abs=0.001)  # the first look spends little
    # p50 of both endpoints; their p95 (300 requests, p99 twice p90) is too wide to judge within +10 %.
    assert comparison.judged_tests == 2
