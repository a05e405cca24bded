"""Calibration's pure parts on synthetic trials: the injected cases, block judging, counting, the table."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from perfci.analysis.calibrate import (
    PROBE_ENDPOINT,
    Case,
    CaseResult,
    cases,
    judge_blocks,
    render_calibration,
    summarise_case,
)
from perfci.config import Config, load_config
from perfci.model import EndpointStats

OTHER = "GET /users"
LOGIN = "POST /auth/login"
Trial = dict[str, EndpointStats]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.perfci]\nprofile = "cal"\n[tool.perfci.profiles.cal]\n'
        "trials = 4\nduration_s = 6\nwarmup_s = 1\nusers = 8\nspawn_rate = 10\n",
        encoding="utf-8",
    )
    return load_config(path, environ={})


def _stats(rng: random.Random, p50: float, *, n: int = 400, errors: dict[str, int] | None = None) -> EndpointStats:
    centre = p50 * rng.lognormvariate(0, 0.02)  # 2 % between-trial noise
    kinds = errors or {}
    return EndpointStats(
        n=n,
        errors=sum(kinds.values()),
        p50=centre,
        p90=centre * 1.8,
        p95=centre * 2.2,
        p99=centre * 3.0,
        mean=centre * 1.2,
        rps=n / 6 * rng.lognormvariate(0, 0.02),
        error_kinds=kinds,
    )


def _trials(
    seed: int, count: int, *, probe_factor: float = 1.0, other_factor: float = 1.0, errors: bool = False
) -> list[Trial]:
    rng = random.Random(seed)
    return [
        {
            PROBE_ENDPOINT: _stats(rng, 2.0 * probe_factor, errors={"500 injected_error": 3} if errors else None),
            OTHER: _stats(rng, 3.0 * other_factor),
            LOGIN: _stats(rng, 6.0),
        }
        for _ in range(count)
    ]


# -- cases ------------------------------------------------------------------------------------------------


def test_cases_size_the_delays_from_the_measured_latency() -> None:
    by_name = {c.name: c for c in cases(base_p50_ms=4.0, base_p95_ms=12.0)}

    assert by_name["+5 % latency"].knobs == {"USERSVC_KNOB_DELAY": f"{PROBE_ENDPOINT}=0.20"}
    assert by_name["+10 % latency"].knobs == {"USERSVC_KNOB_DELAY": f"{PROBE_ENDPOINT}=0.40"}
    assert by_name["+25 % latency"].knobs == {"USERSVC_KNOB_DELAY": f"{PROBE_ENDPOINT}=1.00"}
    assert by_name["tail only (10 % of requests)"].knobs == {"USERSVC_KNOB_DELAY": f"{PROBE_ENDPOINT}=12.00@0.1"}
    assert by_name["1 % errors"].knobs == {"USERSVC_KNOB_ERRORS": f"{PROBE_ENDPOINT}=0.01"}
    assert by_name["+5 % CPU burn"].knobs == {"USERSVC_KNOB_BURN": f"{PROBE_ENDPOINT}=200us"}
    assert by_name["+10 % CPU burn"].knobs == {"USERSVC_KNOB_BURN": f"{PROBE_ENDPOINT}=400us"}
    assert by_name["CPU burn tail (10 % of requests)"].knobs == {"USERSVC_KNOB_BURN": f"{PROBE_ENDPOINT}=12000us@0.1"}
    assert [c.expect_metric for c in by_name.values()] == [
        "p50", "p50", "p50", "p95", "error_rate", "p50", "p50", "p95"
    ]  # fmt: skip


def test_tail_case_delays_at_least_a_millisecond() -> None:
    tail = next(c for c in cases(base_p50_ms=0.1, base_p95_ms=0.3) if c.expect_metric == "p95")
    assert tail.knobs["USERSVC_KNOB_DELAY"] == f"{PROBE_ENDPOINT}=1.00@0.1"


def test_every_case_is_a_knob_the_service_accepts() -> None:
    from userservice.knobs import parse_knobs

    for case in cases(base_p50_ms=2.5, base_p95_ms=7.0):
        knobs = parse_knobs(
            case.knobs.get("USERSVC_KNOB_DELAY", ""),
            case.knobs.get("USERSVC_KNOB_ERRORS", ""),
            case.knobs.get("USERSVC_KNOB_BURN", ""),
        )
        assert knobs.active, case
        assert set(knobs.delays) | set(knobs.error_rates) | set(knobs.burns) == {PROBE_ENDPOINT}, case
    tail = parse_knobs(cases(2.5, 7.0)[3].knobs["USERSVC_KNOB_DELAY"], "")
    assert tail.delays[PROBE_ENDPOINT].fraction == pytest.approx(0.1)
    assert tail.delays[PROBE_ENDPOINT].ms == pytest.approx(7.0)


# -- judge_blocks -----------------------------------------------------------------------------------------


def test_judge_blocks_makes_one_comparison_per_complete_block(config: Config) -> None:
    base, candidate = _trials(1, 14), _trials(2, 14)

    blocks = judge_blocks(config, base, candidate, 4)

    assert len(blocks) == 3  # 14 pairs: three blocks of four; the last two pairs are not a PR run's worth
    assert all(b.mode == "ab" and b.base_trials == 4 and b.candidate_trials == 4 for b in blocks)
    first_probe = next(e for e in blocks[0].endpoints if e.endpoint == PROBE_ENDPOINT)
    assert first_probe.base_stats is not None
    # Each block is judged on its own pairs: its base figures are the median of exactly those four trials.
    assert first_probe.base_stats.p50 == pytest.approx(statistics.median(t[PROBE_ENDPOINT].p50 for t in base[:4]))


def test_judge_blocks_flags_a_large_shift_in_every_block_and_nothing_in_a_a(config: Config) -> None:
    shifted = judge_blocks(config, _trials(3, 12), _trials(4, 12, probe_factor=1.3), 4)
    same = judge_blocks(config, _trials(5, 12), _trials(6, 12), 4)

    for block in shifted:
        verdicts = {e.endpoint: e.verdict for e in block.endpoints}
        assert verdicts[PROBE_ENDPOINT] == "regression"
        assert verdicts[OTHER] != "regression"
        assert verdicts[LOGIN] != "regression"
    for block in same:
        assert all(e.verdict not in ("regression", "improvement") for e in block.endpoints)


# -- summarise_case ---------------------------------------------------------------------------------------


def test_summarise_counts_detections_and_the_observed_change(config: Config) -> None:
    blocks = judge_blocks(config, _trials(7, 12), _trials(8, 12, probe_factor=1.3), 4)

    result = summarise_case(Case("+30 %", {"USERSVC_KNOB_DELAY": "x"}, "p50"), blocks)

    assert result == CaseResult(
        case="+30 %",
        knobs={"USERSVC_KNOB_DELAY": "x"},
        comparisons=3,
        any_alarm=3,
        detected=3,
        off_target_alarms=0,
        observed_change=result.observed_change,
    )
    assert len(result.observed_change) == 3
    assert all(change == pytest.approx(0.3, abs=0.05) for change in result.observed_change)


def test_summarise_counts_an_alarm_on_another_endpoint_as_off_target(config: Config) -> None:
    blocks = judge_blocks(config, _trials(9, 8), _trials(10, 8, other_factor=1.5), 4)

    result = summarise_case(Case("A/A", {}, None), blocks)

    assert result.comparisons == 2
    assert result.any_alarm == 2
    assert result.off_target_alarms == 2
    assert result.detected == 0
    assert result.observed_change == []  # A/A has no expected metric to follow


def test_summarise_detects_injected_errors_by_their_new_kind(config: Config) -> None:
    blocks = judge_blocks(config, _trials(11, 8), _trials(12, 8, errors=True), 4)

    result = summarise_case(Case("1 % errors", {}, "error_rate"), blocks)

    assert result.detected == 2
    assert result.any_alarm == 2
    assert result.off_target_alarms == 0


def test_summarise_a_quiet_a_a(config: Config) -> None:
    blocks = judge_blocks(config, _trials(13, 8), _trials(14, 8), 4)

    result = summarise_case(Case("A/A", {}, None), blocks)

    assert (result.comparisons, result.any_alarm, result.detected, result.off_target_alarms) == (2, 0, 0, 0)
    assert result.improvement_alarms == 0


def test_an_improvement_hidden_behind_another_metrics_inconclusive_is_counted(config: Config) -> None:
    blocks = judge_blocks(config, _trials(15, 8), _trials(16, 8, probe_factor=0.7), 4)
    # The probe's p50 is judged an improvement; make its p95 inconclusive, as a noisy tail would be.
    hidden = []
    for block in blocks:
        endpoints = []
        for endpoint in block.endpoints:
            if endpoint.endpoint == PROBE_ENDPOINT:
                metrics = [
                    m.model_copy(update={"verdict": "inconclusive"}) if m.metric == "p95" else m
                    for m in endpoint.metrics
                ]
                endpoint = endpoint.model_copy(update={"metrics": metrics, "verdict": "inconclusive"})  # noqa: PLW2901
            endpoints.append(endpoint)
        hidden.append(block.model_copy(update={"endpoints": endpoints}))
    assert all(
        e.verdict == "inconclusive" and any(m.verdict == "improvement" for m in e.metrics)
        for block in hidden
        for e in block.endpoints
        if e.endpoint == PROBE_ENDPOINT
    )

    result = summarise_case(Case("A/A", {}, None), hidden)

    assert result.any_alarm == 2
    assert result.improvement_alarms == 2


# -- render_calibration -----------------------------------------------------------------------------------


def test_render_calibration_names_the_profile_and_gives_every_rate_its_exact_interval(config: Config) -> None:
    results = [
        CaseResult("A/A", {}, 10, 1, 0, 1, [], 1),
        CaseResult("+10 % latency", {"USERSVC_KNOB_DELAY": "x"}, 10, 9, 9, 0, [0.08, 0.12, 0.10, 0.09]),
    ]

    text = render_calibration(results, config, 2.5, 7.25)
    lines = text.splitlines()

    assert "profile cal (4 pairs per comparison, 6 s per trial)" in lines[0]
    assert "base p50 2.50 ms, p95 7.25 ms" in lines[0]
    assert "Clopper-Pearson" in lines[0]
    assert lines[1].split()[:1] == ["case"]
    assert len(lines) == 4
    aa = lines[2].split()
    assert aa[0] == "A/A"
    # any alarm, improvement, detected (none for A/A), off-target, median change
    assert aa[1:] == ["1/10", "(0%-45%)", "1/10", "(0%-45%)", "-", "1/10", "(0%-45%)", "-"]
    row = lines[3].split()
    assert row[-9:] == ["9/10", "(55%-100%)", "0/10", "(0%-31%)", "9/10", "(55%-100%)", "0/10", "(0%-31%)", "+10.0%"]
