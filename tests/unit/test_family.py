"""The PR's decision rule on seeded synthetic data with known answers, scipy as the oracle.

One rule (a one-sided test beyond the minimum effect), its MDE (checked by Monte Carlo), one family over
scenarios and error kinds (Holm), alpha spent over sequential looks (any alarm at any look counted), the
judged-percentile threshold and the exact error-kind tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from perfci.analysis import stats
from perfci.analysis.analyse import compare_scenario, decide_look, gather_scenario, judge, look_share
from perfci.model import EndpointStats, StatsSettings

SETTINGS = StatsSettings()
MARGIN = math.log1p(0.05)


def upper_bound(alarms: int, runs: int) -> float:
    """Clopper-Pearson 95 % upper bound of a rate seen `alarms` times in `runs`."""
    return 1.0 if alarms == runs else float(scipy_stats.beta.ppf(0.975, alarms + 1, runs - alarms))


def figures(p50: float, *, n: int = 400, p95_ratio: float = 2.0, kinds: dict[str, int] | None = None) -> EndpointStats:
    errors = sum((kinds or {}).values())
    return EndpointStats(
        n=n,
        errors=errors,
        p50=p50,
        p90=p50 * 1.6,
        p95=p50 * p95_ratio,
        p99=p50 * p95_ratio * 1.3,
        mean=p50 * 1.2,
        rps=n / 6,
        error_kinds=kinds or {},
    )


def paired_arms(
    rng: np.random.Generator, pairs: int, effect: float, sd: float, endpoints: int = 1
) -> tuple[list[dict[str, EndpointStats]], list[dict[str, EndpointStats]]]:
    """Trials whose per-pair log ratio of every statistic is `effect` plus normal noise of sd `sd`."""
    base, candidate = [], []
    for _ in range(pairs):
        b: dict[str, EndpointStats] = {}
        c: dict[str, EndpointStats] = {}
        for e in range(endpoints):
            level = 10.0 * math.exp(rng.normal(0, 0.1))
            b[f"GET /{e}"] = figures(level)
            c[f"GET /{e}"] = figures(level * math.exp(effect + rng.normal(0, sd)))
        base.append(b)
        candidate.append(c)
    return base, candidate


# ------------------------------------------------------------------------------------------------------
# The rule and its power.
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_rule_is_scipys_one_sided_test_beyond_the_margin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base, candidate = rng.normal(0, 0.05, 12), rng.normal(0.07, 0.05, 12)
    result = stats.paired_test(base, candidate, 0.01)
    up, down = stats.beyond_margin_p_values(result, MARGIN)
    d = candidate - base
    assert up == pytest.approx(scipy_stats.ttest_1samp(d - MARGIN, 0, alternative="greater").pvalue)
    assert down == pytest.approx(scipy_stats.ttest_1samp(d + MARGIN, 0, alternative="less").pvalue)


@pytest.mark.parametrize(("pairs", "alpha"), [(8, 0.01), (16, 0.01 / 14), (16, 0.01 * 0.706 / 56)])
def test_the_mde_of_the_rule_has_its_stated_power_by_monte_carlo(pairs: int, alpha: float) -> None:
    sd, power, runs = 0.06, 0.8, 20_000
    mde = stats.rule_detectable(sd / math.sqrt(pairs), pairs - 1, MARGIN, alpha=alpha, power=power)
    d = np.random.default_rng(pairs).normal(mde, sd, size=(runs, pairs))
    t = (d.mean(axis=1) - MARGIN) / (d.std(axis=1, ddof=1) / math.sqrt(pairs))
    found = float(np.mean(scipy_stats.t.sf(t, pairs - 1) < alpha))
    print(f"\n{pairs} pairs, one-sided level {alpha:.2e}: MDE {math.expm1(mde):+.1%}, found {found:.4f} of {runs}")
    assert found == pytest.approx(power, abs=4 * math.sqrt(power * (1 - power) / runs))
    # At the margin itself the rule fires with probability alpha (at most), so the MDE lies beyond it.
    assert mde > MARGIN


@pytest.mark.parametrize(("df", "alpha"), [(1.05, 0.0025), (1.2, 0.002), (1.25, 0.002), (2.0, 0.0001)])
def test_the_rule_has_an_mde_where_scipys_noncentral_t_is_nan_in_the_far_tail(df: float, alpha: float) -> None:
    # A Welch test of a two-trial baseline has df near 1; at a family's small alpha, scipy's nctdtr gives NaN
    # far below the critical value, and the search for the shift used to stop there with a crash.
    shift = stats.one_sided_shift(df, alpha, 0.8)
    critical = scipy_stats.t.ppf(1 - alpha, df)
    assert float(scipy_stats.nct(df, shift).sf(critical)) == pytest.approx(0.8, abs=1e-6)


def test_the_mde_shown_is_what_the_whole_verdict_path_finds() -> None:
    """Through compare_scenario: a true change equal to the reported MDE is found at about the stated power."""
    settings = SETTINGS.model_copy(update={"metrics": ("p50",)})
    sd, pairs, runs = 0.06, 16, 600
    mde = stats.rule_detectable(sd / math.sqrt(pairs), pairs - 1, MARGIN, alpha=settings.alpha, power=settings.power)
    found = 0
    for seed in range(runs):
        base, candidate = paired_arms(np.random.default_rng(seed), pairs, mde, sd)
        found += compare_scenario("s", base, candidate, mode="ab", settings=settings, slos=[]).endpoints[0].verdict == (
            "regression"
        )
    print(f"\nthrough compare_scenario at the MDE {math.expm1(mde):+.1%}: found {found}/{runs}")
    assert found / runs == pytest.approx(0.8, abs=0.07)


# ------------------------------------------------------------------------------------------------------
# Sequential looks.
# ------------------------------------------------------------------------------------------------------


def test_looks_and_their_shares() -> None:
    assert stats.planned_looks(16) == [8, 12, 16]
    assert stats.planned_looks(30) == [8, 12, 16, 20, 30]  # early looks end at three quarters of the budget
    assert stats.obrien_fleming_shares(stats.planned_looks(46))[-1] > 0.75
    assert stats.planned_looks(6) == [6]
    shares = stats.obrien_fleming_shares([8, 12, 16], 0.01)
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] < shares[1] < shares[2]  # little spent early
    assert look_share([8, 12, 16], 12, 0.01) == shares[1]
    assert look_share([], 16, 0.01) == 1.0
    assert look_share([8, 12, 16], 10, 0.01) == shares[1]  # between looks: the next look, never taken


def test_any_alarm_at_any_look_stays_within_alpha_at_the_worst_null() -> None:
    """The null's worst case is a true change exactly at the minimum effect; 14 independent tests a run.

    Every look tests at its share of alpha (Holm over the 14), and an alarm at any look counts.
    """
    runs, tests, looks, alpha, sd = 20_000, 14, [8, 12, 16], 0.01, 0.06
    shares = stats.obrien_fleming_shares(looks, alpha)
    rng = np.random.default_rng(7)
    d = rng.normal(MARGIN, sd, size=(runs, looks[-1], tests))
    alarmed = np.zeros(runs, dtype=bool)
    for n, share in zip(looks, shares, strict=True):
        part = d[:, :n, :]
        t = (part.mean(axis=1) - MARGIN) / (part.std(axis=1, ddof=1) / math.sqrt(n))
        p = scipy_stats.t.sf(t, n - 1) / share
        alarmed |= (p.min(axis=1) * tests) < alpha  # Holm's first step decides whether any test alarms
    rate = float(alarmed.mean())
    print(f"\nany alarm at any look, change at the margin: {alarmed.sum()}/{runs} = {rate:.4f}")
    assert upper_bound(int(alarmed.sum()), runs) < alpha * 1.2
    assert rate <= alpha


def test_aa_runs_through_the_sequential_rule_raise_no_alarm() -> None:
    """A/A through gather_scenario, decide_look and judge, looking at 8, 12 and 16 pairs as a run would."""
    runs, alarms, stopped_early = 300, 0, 0
    looks = [8, 12, 16]
    for seed in range(runs):
        base, candidate = paired_arms(np.random.default_rng(100_000 + seed), 16, 0.0, 0.06, endpoints=3)
        for n in looks:
            evidence = gather_scenario("s", base[:n], candidate[:n], mode="ab", settings=SETTINGS, slos=[], looks=looks)
            if decide_look(evidence, SETTINGS) is not None or n == looks[-1]:
                break
        stopped_early += n < looks[-1]
        result = judge([evidence], SETTINGS).scenarios[0]
        alarms += any(e.verdict in ("regression", "improvement") for e in result.endpoints)
    assert alarms == 0
    assert stopped_early > 0  # equivalence decides some runs before the budget


def test_decide_look_waits_for_an_undecided_test_and_stops_when_all_are_decided() -> None:
    rng = np.random.default_rng(3)
    base, candidate = paired_arms(rng, 8, 0.0, 0.30)  # wide: inconclusive
    looks = [8, 12, 16]
    noisy = gather_scenario("s", base, candidate, mode="ab", settings=SETTINGS, slos=[], looks=looks)
    assert decide_look(noisy, SETTINGS) is None
    base, candidate = paired_arms(rng, 8, 0.0, 0.005)  # tight around zero: no change, decided
    quiet = gather_scenario("s", base, candidate, mode="ab", settings=SETTINGS, slos=[], looks=looks)
    assert decide_look(quiet, SETTINGS) == "every judged test decided after 8 pairs"


# ------------------------------------------------------------------------------------------------------
# One family over scenarios.
# ------------------------------------------------------------------------------------------------------


def test_holm_runs_over_every_scenario_of_the_pr() -> None:
    rng = np.random.default_rng(11)
    one = gather_scenario("a", *paired_arms(rng, 16, 0.25, 0.05), mode="ab", settings=SETTINGS, slos=[])
    two = gather_scenario("b", *paired_arms(rng, 16, 0.0, 0.05, endpoints=2), mode="ab", settings=SETTINGS, slos=[])
    verdict = judge([one, two], SETTINGS)
    # p50 and p95 of 1 + 2 endpoints; the zero error rates can never reject and leave the family.
    assert verdict.judged_tests == 6
    raw = [t.p_worse for e in (one, two) for t in e.tests if t.metric != "error_rate"]
    expected = stats.holm(raw)
    adjusted = [
        m.p_adjusted for s in verdict.scenarios for e in s.endpoints for m in e.metrics if m.metric != "error_rate"
    ]
    slowed = [m for m in verdict.scenarios[0].endpoints[0].metrics if m.metric != "error_rate"]
    assert [m.p_adjusted for m in slowed] == pytest.approx(expected[:2])
    assert len(adjusted) == 6
    alone = judge([one], SETTINGS)
    assert alone.judged_tests == 2
    assert alone.scenarios[0].endpoints[0].metrics[0].p_adjusted <= slowed[0].p_adjusted


# ------------------------------------------------------------------------------------------------------
# Which percentiles are judged.
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "requests"), [(0.95, 50), (0.95, 229), (0.9, 100)])
def test_the_sampling_sd_of_a_log_quantile_matches_simulation(p: float, requests: int) -> None:
    sigma, draws = 0.5, 20_000
    samples = np.random.default_rng(requests).lognormal(0, sigma, size=(draws, requests))
    observed = float(np.std(np.log(np.quantile(samples, p, axis=1))))
    slope = sigma / scipy_stats.norm.pdf(scipy_stats.norm.ppf(p))  # d log Q / dp of a lognormal
    assert stats.quantile_log_sd(p, requests, slope) == pytest.approx(observed, rel=0.12)


def test_a_p95_of_few_requests_is_shown_as_not_judged_and_costs_no_alpha() -> None:
    rng = np.random.default_rng(5)
    base, candidate = paired_arms(rng, 16, 0.0, 0.05, endpoints=2)
    few = [{**t, "GET /1": t["GET /1"].model_copy(update={"n": 20})} for t in base]
    few_c = [{**t, "GET /1": t["GET /1"].model_copy(update={"n": 22})} for t in candidate]
    result = compare_scenario("s", few, few_c, mode="ab", settings=SETTINGS, slos=[])
    scarce = next(e for e in result.endpoints if e.endpoint == "GET /1")
    assert scarce.noise.not_judged == {"p95": 20}  # the smaller arm's count decides, not the outcome
    assert [m.metric for m in scarce.metrics] == ["p50", "error_rate"]


def test_a_wide_tail_needs_more_requests_than_a_narrow_one() -> None:
    rng = np.random.default_rng(6)
    base, candidate = paired_arms(rng, 8, 0.0, 0.05)
    wide = [{k: v.model_copy(update={"p99": v.p99 * 3}) for k, v in t.items()} for t in base]
    wide_c = [{k: v.model_copy(update={"p99": v.p99 * 3}) for k, v in t.items()} for t in candidate]
    narrow = compare_scenario("s", base, candidate, mode="ab", settings=SETTINGS, slos=[])
    spread = compare_scenario("s", wide, wide_c, mode="ab", settings=SETTINGS, slos=[])
    assert narrow.endpoints[0].noise.not_judged == {}
    assert spread.endpoints[0].noise.not_judged == {"p95": 400}


# ------------------------------------------------------------------------------------------------------
# Error kinds: exact tests over trials.
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cand_only", "base_only"), [(0, 0), (3, 0), (5, 2), (1, 4), (12, 0)])
def test_the_sign_test_is_scipys_binomial_test(cand_only: int, base_only: int) -> None:
    expected = (
        1.0
        if cand_only + base_only == 0
        else scipy_stats.binomtest(cand_only, cand_only + base_only, 0.5, alternative="greater").pvalue
    )
    assert stats.sign_test_p(cand_only, base_only) == pytest.approx(expected)


def test_fisher_for_a_stored_baseline_is_scipys() -> None:
    from perfci.analysis.analyse import _fisher_greater

    p, smallest = _fisher_greater(1, 16, 9, 16)
    assert p == pytest.approx(scipy_stats.fisher_exact(np.array([[9, 7], [1, 15]]), alternative="greater").pvalue)
    assert smallest == pytest.approx(
        scipy_stats.fisher_exact(np.array([[10, 6], [0, 16]]), alternative="greater").pvalue
    )


@pytest.mark.parametrize("rate", [0.002, 0.01, 0.05, 0.2])
def test_transient_error_kinds_in_aa_runs_rarely_fail(rate: float) -> None:
    """Each arm's trial shows a kind with probability `rate`, independently: the old "any new kind" failed
    3-13 % of such A/A runs; the exact test in the family stays within alpha."""
    runs, pairs, fails = 1500, 16, 0
    rng = np.random.default_rng(int(rate * 1000))
    for _ in range(runs):
        shows = rng.random((2, pairs)) < rate
        base = [{"GET /a": figures(10.0, kinds={"Timeout": 1} if s else None)} for s in shows[0]]
        candidate = [{"GET /a": figures(10.0, kinds={"Timeout": 1} if s else None)} for s in shows[1]]
        result = compare_scenario(
            "s", base, candidate, mode="ab", settings=SETTINGS.model_copy(update={"metrics": ("p50",)}), slos=[]
        )
        fails += bool(result.endpoints[0].new_error_kinds)
    print(f"\ntransient kind at {rate:.1%} of trials per arm: {fails}/{runs} A/A runs failed")
    assert fails / runs <= SETTINGS.alpha


def test_a_kind_in_every_candidate_trial_fails_even_with_no_other_test() -> None:
    base = [{"GET /a": figures(10.0)} for _ in range(16)]
    candidate = [{"GET /a": figures(10.0, kinds={"HTTP 500": 3})} for _ in range(16)]
    only_kinds = SETTINGS.model_copy(update={"metrics": ("p50",)})  # p50 identical: no spread, no test
    result = compare_scenario("s", base, candidate, mode="ab", settings=only_kinds, slos=[])
    assert result.endpoints[0].new_error_kinds == ["HTTP 500"]
    assert (
        judge([gather_scenario("s", base, candidate, mode="ab", settings=only_kinds, slos=[])], only_kinds).judged_tests
        == 1
    )
