"""perfci.analysis.stats against scipy as the oracle, and its answers to degenerate inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from perfci.analysis import stats
from perfci.analysis.stats import FloatArray

ALPHA = 0.05


def _seeded_arms(seed: int, n_base: int, n_candidate: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(3.0, 0.05, n_base), rng.lognormal(3.02, 0.08, n_candidate)


@pytest.mark.parametrize("seed", range(20))
def test_paired_test_agrees_with_scipy_ttest_rel(seed: int) -> None:
    base, candidate = _seeded_arms(seed, 5, 5)
    result = stats.paired_test(np.log(base), np.log(candidate), ALPHA)
    oracle = scipy_stats.ttest_rel(np.log(candidate), np.log(base))
    low, high = oracle.confidence_interval(confidence_level=1 - ALPHA)
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert result.estimate == pytest.approx(np.mean(np.log(candidate) - np.log(base)), rel=1e-12)
    assert [result.ci_low, result.ci_high] == pytest.approx([low, high], rel=1e-9)
    assert result.df == 4


@pytest.mark.parametrize(
    ("seed", "n_base", "n_candidate"), [(s, nb, nc) for s in range(10) for nb, nc in ((4, 4), (8, 3))]
)
def test_welch_test_agrees_with_scipy_ttest_ind_unequal_var(seed: int, n_base: int, n_candidate: int) -> None:
    base, candidate = _seeded_arms(seed, n_base, n_candidate)
    result = stats.welch_test(np.log(base), np.log(candidate), ALPHA)
    oracle = scipy_stats.ttest_ind(np.log(candidate), np.log(base), equal_var=False)
    low, high = oracle.confidence_interval(confidence_level=1 - ALPHA)
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert result.df == pytest.approx(oracle.df, rel=1e-9)
    assert [result.ci_low, result.ci_high] == pytest.approx([low, high], rel=1e-9)


def _holm_by_definition(p_values: list[float]) -> list[float]:
    """Holm from its definition: p_(i) adjusted = max over j <= i of min(1, (m - j + 1) p_(j))."""
    m = len(p_values)
    ranked = sorted(p_values)
    adjusted_sorted = [max(min(1.0, (m - j) * ranked[j]) for j in range(i + 1)) for i in range(m)]
    # map back: equal p-values share an adjusted value, so look up by rank of the first occurrence
    return [adjusted_sorted[ranked.index(p)] for p in p_values]


@pytest.mark.parametrize("seed", range(30))
def test_holm_agrees_with_its_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p_values = [float(p) for p in rng.uniform(0, 0.2, rng.integers(1, 40))]
    assert stats.holm(p_values) == pytest.approx(_holm_by_definition(p_values), rel=1e-12)


def test_holm_stops_at_the_first_p_value_above_its_threshold() -> None:
    # m = 4, thresholds alpha/4, alpha/3, alpha/2, alpha: 0.005 and 0.01 pass, 0.03 > alpha/2 stops the
    # procedure, so 0.04 is not rejected although it is below alpha on its own.
    p_values = [0.01, 0.04, 0.03, 0.005]
    assert stats.holm(p_values) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < ALPHA for p in stats.holm(p_values)] == [True, False, False, True]


def test_holm_rejects_a_p_value_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="outside"):
        stats.holm([0.5, 1.5])


def test_fewer_than_two_values_cannot_be_tested() -> None:
    with pytest.raises(stats.InsufficientDataError):
        stats.paired_test([1.0], [2.0], ALPHA)
    with pytest.raises(stats.InsufficientDataError):
        stats.welch_test([1.0, 2.0], [3.0], ALPHA)
    with pytest.raises(stats.InsufficientDataError):
        stats.paired_mde(0.1, 1, alpha=ALPHA, power=0.8)


def test_zero_and_negative_values_have_no_log_ratio() -> None:
    with pytest.raises(stats.NonPositiveValueError):
        stats.log_values([1.0, 0.0])
    with pytest.raises(stats.NonPositiveValueError):
        stats.log_values([1.0, -3.0])
    with pytest.raises(stats.NonPositiveValueError):
        stats.log_values([1.0, math.nan])


def test_unequal_pair_counts_are_an_error() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_test([1.0, 2.0, 3.0], [1.0, 2.0], ALPHA)


def test_zero_variance_without_difference_is_exactly_no_change() -> None:
    result = stats.paired_test([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], ALPHA)
    assert (result.estimate, result.p_value, result.ci_low, result.ci_high) == (0.0, 1.0, 0.0, 0.0)
    welch = stats.welch_test([0.01, 0.01], [0.01, 0.01], ALPHA)
    assert (welch.estimate, welch.p_value) == (0.0, 1.0)


def test_zero_variance_with_a_constant_difference_is_exact() -> None:
    base: FloatArray = np.log([10.0, 12.0, 11.0])
    result = stats.paired_test(base, (base + math.log(1.2)).astype(np.float64), ALPHA)
    assert result.p_value == 0.0
    assert result.ci_low == pytest.approx(math.log(1.2)) == result.ci_high


def test_welch_with_one_constant_arm_still_uses_the_other_arms_spread() -> None:
    result = stats.welch_test([0.0, 0.0, 0.0, 0.0], [0.01, 0.03, 0.02, 0.04], ALPHA)
    oracle = scipy_stats.ttest_ind([0.01, 0.03, 0.02, 0.04], [0.0, 0.0, 0.0, 0.0], equal_var=False)
    assert result.p_value == pytest.approx(oracle.pvalue)
    assert result.df == pytest.approx(3.0)


def _power_at(effect: float, se: float, df: float, alpha: float) -> float:
    """Exact power of a two-sided t-test from the noncentral t distribution (scipy as the oracle)."""
    critical = scipy_stats.t.ppf(1 - alpha / 2, df)
    shifted = scipy_stats.nct(df, effect / se)
    return float(shifted.sf(critical) + shifted.cdf(-critical))


@pytest.mark.parametrize(("pairs", "alpha"), [(4, 0.05), (8, 0.05), (8, 0.05 / 30), (20, 0.01)])
def test_paired_mde_has_about_the_requested_power(pairs: int, alpha: float) -> None:
    sd = 0.04
    mde = stats.paired_mde(sd, pairs, alpha=alpha, power=0.8)
    assert _power_at(mde, sd / math.sqrt(pairs), pairs - 1, alpha) == pytest.approx(0.8, abs=0.005)


def test_welch_mde_grows_with_spread_and_shrinks_with_trials() -> None:
    narrow = stats.welch_mde(0.02, 6, 0.02, 6, alpha=ALPHA, power=0.8)
    wide = stats.welch_mde(0.04, 6, 0.04, 6, alpha=ALPHA, power=0.8)
    more = stats.welch_mde(0.04, 12, 0.04, 12, alpha=ALPHA, power=0.8)
    assert narrow < more < wide
    assert wide == pytest.approx(2 * narrow)


@pytest.mark.parametrize(("estimate", "margin"), [(0.15, 0.05), (0.01, 0.05), (0.06, 0.05), (-0.12, 0.1)])
def test_more_pairs_is_the_first_size_that_decides(estimate: float, margin: float) -> None:
    sd, n = 0.08, 4
    result = stats.TestResult(estimate, sd / 2, n - 1, 0.3, -1, 1, n, n, paired=True, sd=sd)
    alpha_test, alpha_interval, power = ALPHA / 20, ALPHA, 0.8
    more = stats.more_trials_to_decide(
        result, margin, alpha_test=alpha_test, alpha_interval=alpha_interval, power=power
    )
    assert more is not None
    beyond = abs(estimate) > margin
    distance = abs(estimate) if beyond else margin - abs(estimate)
    alpha = alpha_test if beyond else alpha_interval
    total = n + more
    assert stats.paired_mde(sd, total, alpha=alpha, power=power) < distance
    if more > 1:
        assert stats.paired_mde(sd, total - 1, alpha=alpha, power=power) >= distance


def test_more_trials_is_none_when_the_stored_baseline_alone_is_too_noisy() -> None:
    # Welch with the base arm fixed: its own spread bounds the standard error from below.
    result = stats.TestResult(0.08, 0.1, 4.0, 0.4, -0.2, 0.3, 3, 3, paired=False, sd=0.01, sd_base=0.3)
    assert stats.more_trials_to_decide(result, 0.05, alpha_test=0.001, alpha_interval=0.05, power=0.8) is None


def test_equivalence_needs_the_whole_interval_inside_the_margin() -> None:
    assert stats.equivalent(-0.03, 0.04, 0.05)
    assert not stats.equivalent(-0.03, 0.06, 0.05)
    assert not stats.equivalent(-0.051, 0.0, 0.05)


def test_relative_turns_log_changes_into_fractions() -> None:
    for ratio in (0.5, 0.9, 1.0, 1.14, 3.0):
        assert stats.relative(math.log(ratio)) == pytest.approx(ratio - 1)


def test_the_t_quantile_shortcut_is_scipys_t_ppf() -> None:
    for df, q in itertools.product((1.0, 3.0, 7.5, 30.0), (0.8, 0.975, 0.99975)):
        assert stats._t_quantile(df, q) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-10)
