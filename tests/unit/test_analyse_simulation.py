"""The detector on thousands of seeded synthetic comparisons: false alarms, detection, quiet neighbours.

The noise model mimics what a shared CI machine does to trial-level statistics (all on the log scale):
a machine state per trial that moves every endpoint together (sd 2 %), independent noise per endpoint and
statistic (p50 2 %, mean 3 %, p95 4 %, p99 8 %, rps 2 %), and a slow drift (sd 3 %). In an A/B run the two
trials of a pair run back to back and share the drift; against a stored baseline each arm has its own.
Altogether a trial's p50 varies by about 4 % (CV) around its true value. A regression multiplies every
latency statistic of one endpoint and divides its throughput (closed-loop users) by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from perfci.analysis.analyse import compare_scenario
from perfci.model import EndpointStats, StatsSettings

SETTINGS = StatsSettings()
SHAPE = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "mean": 1.2}
SPREAD = {"p50": 0.02, "p95": 0.04, "p99": 0.08, "mean": 0.03}
# name, p50 in ms, requests per trial (the last one too few for a p99)
ENDPOINTS = (
    ("GET /a", 10.0, 2000),
    ("POST /b", 50.0, 400),
    ("GET /c", 5.0, 3000),
    ("GET /d", 30.0, 800),
    ("POST /e", 120.0, 90),
)
TARGET = "GET /a"


@dataclass(frozen=True)
class Rates:
    any_alarm: float  # a regression or improvement verdict on any endpoint
    target_found: float  # a regression on the endpoint that was slowed down
    others_alarm: float  # a regression or improvement on any other endpoint
    target_improved: float  # some metric of the slowed-down (or sped-up) endpoint judged an improvement


def _trial(rng: np.random.Generator, drift: float, log_shift: float, scale: float) -> dict[str, EndpointStats]:
    machine = rng.normal(0, 0.02 * scale) + drift
    trial = {}
    for name, p50, requests in ENDPOINTS:
        shift = log_shift if name == TARGET else 0.0
        value = {m: p50 * SHAPE[m] * np.exp(machine + shift + rng.normal(0, s * scale)) for m, s in SPREAD.items()}
        trial[name] = EndpointStats(
            n=requests,
            errors=0,
            p50=value["p50"],
            p90=value["p95"] * 0.9,
            p95=value["p95"],
            p99=value["p99"],
            mean=value["mean"],
            rps=requests / 8 * np.exp(-machine - shift + rng.normal(0, 0.02 * scale)),
        )
    return trial


def simulate(
    seeds: int,
    pairs: int,
    mode: str,
    *,
    change: float = 0.0,
    scale: float = 1.0,
    first_seed: int = 0,
    settings: StatsSettings = SETTINGS,
) -> Rates:
    """Run `seeds` independent comparisons with `pairs` trials per arm; the candidate's TARGET is `change` slower."""
    alarms = found = others = improved = 0
    for seed in range(first_seed, first_seed + seeds):
        rng = np.random.default_rng(seed)
        base_drift = rng.normal(0, 0.03 * scale, pairs)
        cand_drift = base_drift if mode == "ab" else rng.normal(0, 0.03 * scale, pairs)
        base = [_trial(rng, d, 0.0, scale) for d in base_drift]
        candidate = [_trial(rng, d, float(np.log1p(change)), scale) for d in cand_drift]
        result = compare_scenario("sim", base, candidate, mode=mode, settings=settings, slos=[])  # type: ignore[arg-type]
        verdicts = {e.endpoint: e.verdict for e in result.endpoints}
        loud = {e for e, v in verdicts.items() if v in ("regression", "improvement")}
        alarms += bool(loud)
        found += verdicts[TARGET] == "regression"
        others += bool(loud - {TARGET})
        target = next(e for e in result.endpoints if e.endpoint == TARGET)
        improved += any(m.verdict == "improvement" for m in target.metrics)
    return Rates(alarms / seeds, found / seeds, others / seeds, improved / seeds)


@pytest.mark.parametrize("alpha", [0.05, 0.01])  # a lenient setting and the default
@pytest.mark.parametrize("mode", ["ab", "baseline"])
def test_with_no_change_false_alarms_stay_at_or_below_alpha(mode: str, alpha: float) -> None:
    settings = SETTINGS.model_copy(update={"alpha": alpha})
    rates = simulate(800, 4, mode, settings=settings)
    assert rates.any_alarm <= alpha


def test_a_shift_four_times_the_minimum_effect_is_found_with_8_pairs_at_realistic_noise() -> None:
    # The rule needs the one-sided bound beyond +5 % at alpha 1 % over the family: at this noise 8 pairs
    # find +15 % in about 88 % and +20 % always; 16 pairs find +10 % in about 84 %.
    rates = simulate(250, 8, "ab", change=4 * SETTINGS.min_effect["p50"], first_seed=10_000)
    assert rates.target_found >= 0.95
    assert rates.others_alarm <= SETTINGS.alpha


def test_4_pairs_find_a_shift_three_times_the_minimum_effect_on_a_quiet_machine() -> None:
    # A quarter of the realistic noise (a p50 CV of about 1 %): what 4 pairs need for 95 % detection.
    rates = simulate(250, 4, "ab", change=3 * SETTINGS.min_effect["p50"], scale=0.25, first_seed=20_000)
    assert rates.target_found >= 0.95
    assert rates.others_alarm <= SETTINGS.alpha


def test_against_a_stored_baseline_a_large_shift_is_found_and_neighbours_stay_quiet() -> None:
    rates = simulate(250, 8, "baseline", change=0.25, first_seed=30_000)
    assert rates.target_found >= 0.95
    assert rates.others_alarm <= SETTINGS.alpha


def test_an_improvement_is_not_reported_as_a_regression() -> None:
    rates = simulate(150, 8, "ab", change=-0.2, first_seed=40_000)
    assert rates.target_found == 0.0
    # Reported per metric; the endpoint's own verdict stays "inconclusive" when, say, its p99 cannot decide.
    assert rates.target_improved >= 0.95
