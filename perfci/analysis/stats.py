"""Trial-level statistics: paired and Welch t on log statistics, Holm, minimum detectable effect, sample sizes.

Every function takes numbers and returns numbers. The unit of evidence is a trial (one Locust run): a
statistic such as p95 is computed per trial, and the tests here compare those per-trial values. Ratios are
judged on the log scale, where a 10 % slowdown is the same distance whether the endpoint takes 2 ms or 2 s,
and where the spread of a percentile across trials is close to symmetric.

Degenerate inputs are never turned into a result silently: fewer than two values per arm raise
`InsufficientDataError` (no variance can be estimated), and a non-positive value raises `NonPositiveValueError`
(no logarithm exists). Zero variance is handled exactly: identical differences give an exact answer.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

FloatArray = npt.NDArray[np.float64]

# A sample size beyond this is reported as "not reachable" rather than as an absurd number of trials.
MAX_TRIALS = 1000


class InsufficientDataError(ValueError):
    """Too few values to estimate a variance (a t-test needs at least two per arm or two pairs)."""


class NonPositiveValueError(ValueError):
    """A ratio statistic with a zero or negative value: it has no logarithm, so no log ratio."""


@dataclass(frozen=True)
class TestResult:
    """A difference between two arms on the analysed scale (log for ratios), with its t-based inference.

    `estimate` is candidate minus base: the mean of the paired differences, or the difference of the arm
    means. `ci_low`/`ci_high` bound it at the confidence level `1 - alpha`. `sd` is the standard deviation
    of the pair differences (paired) or of the candidate arm (Welch); `sd_base` is the base arm's (Welch).
    """

    estimate: float
    se: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    n_base: int
    n_candidate: int
    paired: bool
    sd: float
    sd_base: float = 0.0


def log_values(values: Sequence[float] | FloatArray) -> FloatArray:
    """Natural logs of positive values; a zero or negative value raises `NonPositiveValueError`."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise NonPositiveValueError(f"non-finite value among {array.tolist()}")
    if np.any(array <= 0):
        raise NonPositiveValueError(f"non-positive value among {array.tolist()}: a log ratio needs values above 0")
    return np.log(array)


def relative(log_change: float) -> float:
    """A log-scale change as a relative one: log(1.14) -> +0.14."""
    return math.expm1(log_change)


def _finite(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds a non-finite value: {array.tolist()}")
    return array


def _t_inference(
    estimate: float, se: float, df: float, alpha: float
) -> tuple[float, float, float]:  # p, ci_low, ci_high
    """Two-sided p and CI of a t statistic; zero standard error is exact (no spread, no uncertainty)."""
    if se == 0.0:
        return (1.0 if estimate == 0.0 else 0.0), estimate, estimate
    t = estimate / se
    p = float(2 * special.stdtr(df, -abs(t)))
    half = _t_quantile(df, 1 - alpha / 2) * se
    return p, estimate - half, estimate + half


def paired_test(
    base: Sequence[float] | FloatArray, candidate: Sequence[float] | FloatArray, alpha: float
) -> TestResult:
    """Paired t on the differences candidate[i] - base[i] (pass logs for log ratios); as scipy's ttest_rel."""
    b, c = _finite(base, "base"), _finite(candidate, "candidate")
    if b.shape != c.shape:
        raise ValueError(f"paired arms differ in length: {b.size} base, {c.size} candidate")
    if b.size < 2:
        raise InsufficientDataError(f"{b.size} pair(s): a paired test needs at least 2")
    d = c - b
    n = d.size
    # A spread below rounding noise of the mean is no spread: identical differences are exact.
    sd = float(np.std(d, ddof=1))
    if sd <= 1e-12 * max(1.0, abs(float(d.mean()))):
        sd = 0.0
    se = sd / math.sqrt(n)
    estimate = float(d.mean())
    p, low, high = _t_inference(estimate, se, n - 1, alpha)
    return TestResult(estimate, se, float(n - 1), p, low, high, n, n, paired=True, sd=sd)


def welch_test(base: Sequence[float] | FloatArray, candidate: Sequence[float] | FloatArray, alpha: float) -> TestResult:
    """Welch's unequal-variance t on mean(candidate) - mean(base); as scipy's ttest_ind(equal_var=False)."""
    b, c = _finite(base, "base"), _finite(candidate, "candidate")
    if b.size < 2 or c.size < 2:
        raise InsufficientDataError(f"{b.size} base and {c.size} candidate value(s): Welch needs at least 2 per arm")
    var_b, var_c = float(np.var(b, ddof=1)), float(np.var(c, ddof=1))
    scale = max(1.0, abs(float(b.mean())), abs(float(c.mean())))
    var_b = 0.0 if var_b <= (1e-12 * scale) ** 2 else var_b
    var_c = 0.0 if var_c <= (1e-12 * scale) ** 2 else var_c
    vb, vc = var_b / b.size, var_c / c.size
    se = math.sqrt(vb + vc)
    df = welch_df(vb, b.size, vc, c.size)
    estimate = float(c.mean() - b.mean())
    p, low, high = _t_inference(estimate, se, df, alpha)
    return TestResult(
        estimate, se, df, p, low, high, b.size, c.size, paired=False, sd=math.sqrt(var_c), sd_base=math.sqrt(var_b)
    )


def welch_df(var_mean_base: float, n_base: int, var_mean_candidate: float, n_candidate: int) -> float:
    """Welch-Satterthwaite degrees of freedom from the squared standard errors of each arm's mean."""
    denominator = var_mean_base**2 / (n_base - 1) + var_mean_candidate**2 / (n_candidate - 1)
    if denominator == 0.0:
        return float(n_base + n_candidate - 2)  # no spread in either arm; df is then irrelevant
    return (var_mean_base + var_mean_candidate) ** 2 / denominator


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        p = p_values[index]
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value {p} outside [0, 1]")
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def _t_quantile(df: float, q: float) -> float:
    """Student t quantile; scipy.special's ufunc is the same function as scipy.stats.t.ppf, 50x cheaper."""
    return float(special.stdtrit(df, q))


def _t_sum(df: float, alpha: float, power: float) -> float:
    return _t_quantile(df, 1 - alpha / 2) + _t_quantile(df, power)


def minimum_detectable(se: float, df: float, alpha: float, power: float) -> float:
    """The smallest true difference a two-sided t-test at `alpha` finds with probability `power`.

    Solved exactly on the noncentral t distribution; the textbook approximation
    (t_{1-alpha/2, df} + t_{power, df}) * se is optimistic at the small alphas a Holm family needs.
    """
    if df <= 0:
        raise InsufficientDataError("no degrees of freedom: at least 2 values per arm are needed")
    return _detectable_shift(df, alpha, power) * se


def _noncentral_t_below(df: float, noncentrality: float, t: float) -> float:
    """P(T <= t) for a noncentral t. scipy's nctdtr gives NaN deep in a tail (df near 1, a shift far from
    `t`); the probability there is at its limit: all the mass below `t`, or none."""
    below = float(special.nctdtr(df, noncentrality, t))
    if math.isfinite(below):
        return below
    return 1.0 if noncentrality < t else 0.0


@functools.lru_cache(maxsize=4096)
def _detectable_shift(df: float, alpha: float, power: float) -> float:
    """The noncentrality (effect over standard error) at which the test's power reaches `power`."""
    critical = _t_quantile(df, 1 - alpha / 2)

    def shortfall(noncentrality: float) -> float:
        far_tail = _noncentral_t_below(df, noncentrality, -critical)
        return 1 - _noncentral_t_below(df, noncentrality, critical) + far_tail - power

    high = _t_sum(df, alpha, power)
    while shortfall(high) < 0:
        high *= 1.5
    # At no effect the test rejects with probability alpha < power, so the root lies in (0, high).
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-9))


def paired_mde(sd: float, pairs: int, *, alpha: float, power: float) -> float:
    """MDE of a paired comparison with `pairs` pairs whose differences have standard deviation `sd`."""
    if pairs < 2:
        raise InsufficientDataError(f"{pairs} pair(s): at least 2 are needed")
    return minimum_detectable(sd / math.sqrt(pairs), pairs - 1, alpha, power)


def welch_mde(
    sd_base: float, n_base: int, sd_candidate: float, n_candidate: int, *, alpha: float, power: float
) -> float:
    """MDE of a Welch comparison with the given per-arm standard deviations and sizes."""
    if n_base < 2 or n_candidate < 2:
        raise InsufficientDataError(f"{n_base} base and {n_candidate} candidate values: at least 2 per arm are needed")
    vb, vc = sd_base**2 / n_base, sd_candidate**2 / n_candidate
    return minimum_detectable(math.sqrt(vb + vc), welch_df(vb, n_base, vc, n_candidate), alpha, power)


def equivalent(ci_low: float, ci_high: float, margin: float) -> bool:
    """True when the whole confidence interval lies within +-margin: the change is too small to matter."""
    return -margin <= ci_low and ci_high <= margin


def more_trials_to_decide(
    result: TestResult, margin: float, *, alpha_test: float, alpha_interval: float, power: float
) -> int | None:
    """How many more pairs (paired) or candidate trials (Welch, base fixed) would likely decide the question.

    The observed spread is taken as the truth and the observed estimate as the true difference. Beyond
    `margin`, a verdict needs significance: the size at which a test at `alpha_test` (the family-adjusted
    level) rejects with probability `power`. Within it, a verdict needs equivalence: the size at which the
    `1 - alpha_interval` interval fits inside +-margin with that probability. `None` when more than
    `MAX_TRIALS` would be needed, or when adding candidate trials alone cannot get there because the stored
    baseline's own spread is too wide (an A/B run is the way to go).
    """
    beyond = abs(result.estimate) > margin
    distance = abs(result.estimate) if beyond else margin - abs(result.estimate)
    alpha = alpha_test if beyond else alpha_interval
    if distance <= 0:
        return None  # exactly on the margin: no finite size decides it

    def size(total: int) -> tuple[float, float]:  # standard error and degrees of freedom at `total`
        if result.paired:
            return result.sd / math.sqrt(total), float(total - 1)
        vb, vc = result.sd_base**2 / result.n_base, result.sd**2 / total
        return math.sqrt(vb + vc), welch_df(vb, result.n_base, vc, total)

    def roughly(total: int) -> bool:
        se, df = size(total)
        return _t_sum(df, alpha, power) * se < distance

    def exactly(total: int) -> bool:
        se, df = size(total)
        return minimum_detectable(se, df, alpha, power) < distance

    # The detectable distance shrinks as trials are added: bisect on the cheap approximation, then walk up
    # on the exact figure (the approximation is optimistic, so the answer is at or just above it).
    low, high = max(result.n_candidate, 2), MAX_TRIALS
    if not roughly(high):
        return None
    while low < high:
        middle = (low + high) // 2
        if roughly(middle):
            high = middle
        else:
            low = middle + 1
    while not exactly(low):
        if low >= MAX_TRIALS:
            return None
        low += 1
    return max(low - result.n_candidate, 1)


# --------------------------------------------------------------------------------------------------------
# The decision rule: one-sided tests against the minimum effect, their power, and alpha spent over looks.
# --------------------------------------------------------------------------------------------------------


def beyond_margin_p_values(result: TestResult, margin: float) -> tuple[float, float]:
    """One-sided p-values of H0: difference <= +margin (an increase) and H0: difference >= -margin (a decrease).

    Rejecting the first at level a is the same as the lower bound of the one-sided (1 - a) interval lying
    above +margin: significance and the minimum effect are one rule. With zero standard error the answer is
    exact (0 when the difference clears the margin, 1 when it does not).
    """
    if margin < 0:
        raise ValueError(f"a margin cannot be negative: {margin}")
    if result.se == 0.0:
        return (0.0 if result.estimate > margin else 1.0), (0.0 if result.estimate < -margin else 1.0)
    up = float(special.stdtr(result.df, -(result.estimate - margin) / result.se))
    down = float(special.stdtr(result.df, (result.estimate + margin) / result.se))
    return up, down


@functools.lru_cache(maxsize=4096)
def one_sided_shift(df: float, alpha: float, power: float) -> float:
    """The noncentrality at which a one-sided t-test at `alpha` with `df` degrees of freedom rejects with `power`."""
    if df <= 0:
        raise InsufficientDataError("no degrees of freedom: at least 2 values per arm are needed")
    critical = _t_quantile(df, 1 - alpha)

    def shortfall(noncentrality: float) -> float:
        return 1 - _noncentral_t_below(df, noncentrality, critical) - power

    high = max(_t_quantile(df, 1 - alpha) + _t_quantile(df, power), 0.0) + 1.0
    while shortfall(high) < 0:
        high *= 1.5
    # At no shift the test rejects with probability alpha; only a power below alpha needs a negative shift.
    low = 0.0
    while shortfall(low) > 0:
        low = low * 1.5 - 1.0
    return float(optimize.brentq(shortfall, low, high, xtol=1e-9))


def rule_detectable(se: float, df: float, margin: float, *, alpha: float, power: float) -> float:
    """The smallest true difference the rule "one-sided test beyond `margin` at `alpha`" finds with `power`.

    That rule rejects when (estimate - margin) / se exceeds the t critical value, so its power at a true
    difference D is that of a one-sided t-test at D - margin: the MDE is margin + shift * se, never below the
    margin itself (at exactly the margin the rule fires with probability alpha).
    """
    return margin + one_sided_shift(df, alpha, power) * se


def obrien_fleming_shares(looks: Sequence[int], alpha: float = 0.01) -> list[float]:
    """Share of the family's alpha spent at each planned look (pairs at each look, increasing), summing to 1.

    Lan-DeMets' O'Brien-Fleming-like spending function, alpha(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t)) at
    information fraction t = pairs / last look, taken for the family's alpha a and turned into shares of
    the increments. Each look then tests at its increment alone (a Bonferroni split over looks), so the
    chance of any false alarm at any look is at most the sum of the increments, whatever the correlation
    between looks: little is spent early, most is kept for the last look.
    """
    if not looks or any(b <= a for a, b in itertools.pairwise(looks)) or looks[0] < 1:
        raise ValueError(f"looks must be increasing positive pair counts: {list(looks)}")
    z = float(special.ndtri(1 - alpha / 2))
    spent = [2 - 2 * float(special.ndtr(z / math.sqrt(n / looks[-1]))) for n in looks]
    increments = [spent[0]] + [b - a for a, b in itertools.pairwise(spent)]
    return [i / spent[-1] for i in increments]


def planned_looks(budget: int, first: int = 8, step: int = 4) -> list[int]:
    """Pairs at each planned look: 8, 12, 16, ... up to three quarters of the budget, then the budget.

    Looks split alpha (`obrien_fleming_shares`), and a look just before the end would take most of what
    the last look keeps (at 44 of 46 pairs the last look would be left 16 % of alpha); ending the early
    looks at three quarters leaves the last one about 70-80 %.
    """
    if budget < 1:
        raise ValueError(f"a budget of {budget} pairs")
    looks = [n for n in range(first, math.floor(0.75 * budget) + 1, step) if n < budget]
    return [*looks, budget]


def quantile_log_sd(p: float, requests: float, log_slope: float) -> float:
    """Sampling sd of the log of a p-quantile estimated from `requests` values (order-statistic approximation).

    The sample quantile's rank spreads like a binomial count, sqrt(n p (1 - p)); on the log-latency scale
    that becomes sqrt(p (1 - p) / n) times d log Q / dp, the log quantile function's slope at p.
    """
    if requests <= 0:
        return math.inf
    return math.sqrt(p * (1 - p) / requests) * log_slope


def sign_test_p(candidate_only: int, base_only: int) -> float:
    """Exact one-sided p of more candidate-only than base-only pairs (McNemar's exact test, binomial 1/2)."""
    discordant = candidate_only + base_only
    if discordant == 0:
        return 1.0
    return float(special.bdtrc(candidate_only - 1, discordant, 0.5)) if candidate_only > 0 else 1.0
