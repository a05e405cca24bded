"""Max-T over sign flips: against its definition, its error rate under the null, and its gain over Holm."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from perfci.analysis import signflip, stats
from perfci.analysis.stats import FloatArray


def _t(values: FloatArray) -> float:
    values = values[~np.isnan(values)]
    sd = values.std(ddof=1)
    if sd == 0:
        return 0.0 if values.mean() == 0 else np.inf
    return float(values.mean() / (sd / np.sqrt(values.size)))


def maxt_adjusted(d: FloatArray) -> list[float]:
    """Max-T's adjusted p-values alone: they do not depend on alpha, only the per-test level beside them does."""
    return signflip.maxt(d, 0.05)[0]


def per_test_alpha(d: FloatArray, alpha: float) -> float:
    return signflip.maxt(d, alpha)[1]


def _maxt_by_definition(d: FloatArray) -> list[float]:
    """Westfall-Young step-down max-T written as loops over every sign pattern."""
    pairs, tests = d.shape
    patterns = [np.array(p) for p in itertools.product((1.0, -1.0), repeat=pairs)]
    observed = [abs(_t(d[:, j])) for j in range(tests)]
    order = sorted(range(tests), key=lambda j: -observed[j])
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, j in enumerate(order):
        rest = order[rank:]
        hits = sum(
            max(abs(_t((signs * d[:, k]).astype(np.float64))) for k in rest) >= observed[j] * (1 - 1e-9)
            for signs in patterns
        )
        running = max(running, hits / len(patterns))
        adjusted[j] = running
    return [adjusted[j] for j in range(tests)]


@pytest.mark.parametrize("seed", range(4))
def test_maxt_agrees_with_its_definition_including_missing_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = rng.normal(0.02 * seed, 0.05, size=(8, 5))
    d[rng.integers(0, 8), rng.integers(0, 5)] = np.nan
    assert maxt_adjusted(d) == pytest.approx(_maxt_by_definition(d), abs=1e-12)


def test_a_single_test_gets_the_exact_sign_flip_p() -> None:
    # 7 positive differences of 8 and one small negative one: only the patterns that keep t as large count.
    d = np.array([[0.05], [0.04], [0.06], [0.05], [0.07], [0.03], [0.05], [-0.01]])
    (p,) = maxt_adjusted(d)
    assert p == pytest.approx(_maxt_by_definition(d)[0])
    # Reached by the data, by flipping only the small negative difference, and by the negations of both.
    assert p == pytest.approx(4 / 256)


def test_identical_differences_reach_the_smallest_attainable_p() -> None:
    d = np.full((10, 1), 0.1)
    assert maxt_adjusted(d) == [pytest.approx(2 / 2**10)]


def test_tests_that_move_together_cost_no_more_than_one() -> None:
    rng = np.random.default_rng(7)
    column = rng.normal(0.03, 0.05, size=(12, 1))  # modest evidence, far from the smallest attainable p
    copies = np.hstack([column] * 6)
    alone = maxt_adjusted(column)[0]
    assert maxt_adjusted(copies) == pytest.approx([alone] * 6)
    # Holm would multiply the same evidence by six.
    assert stats.holm([stats.paired_test(np.zeros(12), column[:, 0], 0.05).p_value] * 6)[0] > 5 * alone


def test_independent_tests_are_adjusted_about_as_much_as_bonferroni() -> None:
    rng = np.random.default_rng(8)
    d = rng.normal(0.0, 0.05, size=(14, 6))
    d[:, 0] += 0.06
    (first, *_) = maxt_adjusted(d)
    single = stats.paired_test(np.zeros(14), d[:, 0], 0.05).p_value
    assert single < first <= min(1.0, 6 * single * 1.5)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_with_no_change_any_alarm_stays_at_or_below_alpha_with_correlated_heavy_tailed_noise(alpha: float) -> None:
    rng = np.random.default_rng(11)
    runs, pairs, tests = 1500, 12, 10
    alarms = 0
    for _ in range(runs):
        host = rng.standard_t(3, size=(pairs, 1)) * 0.05  # moves every test of a pair together
        d: FloatArray = (host + rng.normal(0, 0.03, size=(pairs, tests))).astype(np.float64)
        alarms += min(maxt_adjusted(d)) < alpha
    # The test is exact; allow the binomial error of 1500 runs (about 2.5 standard errors).
    assert alarms / runs <= alpha + 2.5 * np.sqrt(alpha * (1 - alpha) / runs)


def test_step_down_finds_a_second_change_once_the_first_is_rejected() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.0, 0.02, size=(12, 8))
    d[:, 0] += 0.2
    d[:, 1] += 0.05
    p = maxt_adjusted(d)
    assert p[0] < 0.01
    assert p[1] < 0.01
    assert all(q > 0.01 for q in p[2:])


def test_enough_pairs_needs_a_few_sign_patterns_inside_alpha() -> None:
    assert not signflip.enough_pairs(9, 0.01)
    assert signflip.enough_pairs(10, 0.01)
    assert not signflip.enough_pairs(7, 0.05)
    assert signflip.enough_pairs(8, 0.05)
    assert not signflip.enough_pairs(1, 0.5)


def test_beyond_the_exact_limit_patterns_are_drawn_reproducibly_and_start_with_the_data() -> None:
    pairs = signflip.EXACT_PAIRS + 4
    first, again = signflip.sign_patterns(pairs), signflip.sign_patterns(pairs)
    assert first.shape == (signflip.RANDOM_PATTERNS, pairs)
    assert np.array_equal(first, again)
    assert np.all(first[0] == 1.0)
    assert abs(float(first[1:].mean())) < 0.01  # balanced signs


def test_many_pairs_give_about_the_paired_t_p_for_one_test() -> None:
    rng = np.random.default_rng(5)
    d = rng.normal(0.02, 0.05, size=(40, 1))
    p_t = stats.paired_test(np.zeros(40), d[:, 0], 0.05).p_value
    assert maxt_adjusted(d)[0] == pytest.approx(p_t, rel=0.15, abs=0.003)


def test_per_test_alpha_lies_between_bonferroni_and_alpha() -> None:
    rng = np.random.default_rng(9)
    host = rng.normal(0, 0.05, size=(12, 1))
    together: FloatArray = (host + rng.normal(0, 0.005, size=(12, 8))).astype(np.float64)
    apart: FloatArray = rng.normal(0, 0.05, size=(12, 8))
    assert 0.01 / 8 <= per_test_alpha(apart, 0.01) < per_test_alpha(together, 0.01) <= 0.01
    assert per_test_alpha(together, 0.01) > 0.005


def test_bad_shapes_and_too_few_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="pairs x tests"):
        maxt_adjusted(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        maxt_adjusted(np.array([[0.1, np.nan], [0.2, np.nan], [0.1, 0.3]]))
