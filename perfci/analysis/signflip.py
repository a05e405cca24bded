"""Westfall-Young step-down max-T over sign flips: family-wise p-values for the tests of one paired run.

Holm treats the tests of a family as if nothing linked them, so each extra test raises the bar for all.
In an A/B run they are linked: when the host slows down during one arm of a pair, every endpoint's
latency moves with it, and the per-pair log ratios of the endpoints rise and fall together. The max-T
procedure (Westfall & Young, 1993) judges each t statistic against the distribution of the *largest* |t|
in the family, taken over every way of swapping the arms within pairs. With no change, which arm of a
pair ran as "candidate" carries no information (the arm order is randomised), so each pair's vector of
differences is as likely as its negation: flipping signs pair by pair gives the exact null distribution
without assuming normality or independence. Strongly correlated tests then cost little more than one.

The sign patterns are enumerated exactly up to `EXACT_PAIRS` pairs and drawn at random (seeded, so a run's
verdicts are reproducible) beyond. With n pairs the smallest attainable p-value is 2 / 2**n, so a run
needs enough pairs for a handful of patterns to fall below alpha; `enough_pairs` says when.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]

EXACT_PAIRS = 16  # 65,536 patterns: exact and still a few milliseconds per family
RANDOM_PATTERNS = 50_000  # beyond EXACT_PAIRS; the Monte Carlo error of p = 0.01 is then about 0.0005
# Sign patterns (up to swapping every pair at once) that must lie below alpha before max-T is used: with
# fewer, the attainable p-values are too coarse and the test loses power (Holm is used instead).
MIN_PATTERNS_BELOW_ALPHA = 4
_SEED = 20_261_128


def enough_pairs(pairs: int, alpha: float) -> bool:
    """True when `pairs` pairs give at least MIN_PATTERNS_BELOW_ALPHA sign patterns inside alpha."""
    return pairs >= 2 and 2 ** (pairs - 1) * alpha >= MIN_PATTERNS_BELOW_ALPHA


def sign_patterns(pairs: int) -> FloatArray:
    """Rows of +-1, one per sign pattern; the first row is all +1 (the data as observed)."""
    if pairs <= EXACT_PAIRS:
        rows = np.array(list(itertools.product((1.0, -1.0), repeat=pairs)), dtype=np.float64)
        return rows.reshape(-1, pairs)
    rng = np.random.default_rng(_SEED)
    drawn = rng.choice(np.array([1.0, -1.0]), size=(RANDOM_PATTERNS - 1, pairs))
    return np.vstack([np.ones((1, pairs)), drawn])


def t_statistics(differences: FloatArray, signs: FloatArray) -> FloatArray:
    """One-sample t of each column's differences under each sign pattern (rows); NaN marks a missing pair.

    Returns a (patterns x tests) array. The sum of squares does not change under sign flips, so each
    pattern's variance follows from its mean alone. A column with no spread under a pattern gets |t| = inf
    when its mean is not zero (all differences equal: as certain as a t-test can be) and 0 when it is.
    """
    present = ~np.isnan(differences)
    d = np.where(present, differences, 0.0)
    n = present.sum(axis=0).astype(np.float64)
    if np.any(n < 2):
        raise ValueError("every test needs at least 2 pairs for a t statistic")
    means = (signs @ d) / n
    squares = (d * d).sum(axis=0)
    variance = (squares - n * means * means) / (n - 1)
    scale = np.maximum(squares / n, 1e-300)
    variance = np.where(variance <= 1e-12 * scale, 0.0, variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = means / np.sqrt(variance / n)
    zero_mean = np.abs(means) <= 1e-12 * np.sqrt(scale)
    return np.where(zero_mean, 0.0, t)


def maxt(differences: FloatArray, alpha: float) -> tuple[list[float], float]:
    """Max-T over one family (a (pairs x tests) array): its adjusted p-values and its per-test level.

    The adjusted two-sided p of a test is the share of sign patterns under which the largest |t| among it
    and every test with a smaller observed |t| reaches its own observed |t|, made monotone in the order of
    |t|. This controls the family-wise error rate at any alpha when no test's true difference is non-zero
    (exactly, with the patterns enumerated) and, by subset pivotality, for the tests whose hypotheses are
    true.

    The per-test level, for minimum detectable effects, is the single-test two-sided level that max-T's
    first step amounts to: the (1 - alpha) quantile of the largest |t| under sign flips, turned back into
    the level of a t-test with the median degrees of freedom of the family. With perfectly correlated tests
    it is alpha; with independent ones, about alpha / tests (Bonferroni).
    """
    d = _checked(differences)
    null = np.abs(t_statistics(d, sign_patterns(d.shape[0])))
    return _adjusted(null), _per_test_alpha(d, null, alpha)


def _checked(differences: FloatArray) -> FloatArray:
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError(f"expected a (pairs x tests) array, got shape {d.shape}")
    return d


def _adjusted(null: FloatArray) -> list[float]:
    """Step-down adjusted p-values from |t| per (pattern, test); row 0 is the data as observed."""
    observed = null[0]
    order = np.argsort(-observed, kind="stable")
    # Column k of `tail_max` is the largest |t| among the tests ranked k and below, per pattern.
    tail_max = np.maximum.accumulate(null[:, order[::-1]], axis=1)[:, ::-1]
    # The observed pattern is among the patterns, so every p is at least 1 / patterns; the tolerance
    # keeps rounding from dropping it.
    reach = tail_max >= observed[order] * (1 - 1e-9)
    adjusted = np.maximum.accumulate(reach.mean(axis=0))
    out = np.empty(null.shape[1])
    out[order] = np.minimum(adjusted, 1.0)
    return [float(p) for p in out]


def _per_test_alpha(d: FloatArray, null: FloatArray, alpha: float) -> float:
    critical = float(np.quantile(null.max(axis=1), 1 - alpha, method="higher"))
    if not math.isfinite(critical):
        return alpha / d.shape[1]
    df = float(np.median((~np.isnan(d)).sum(axis=0))) - 1
    return float(min(alpha, max(2 * special.stdtr(df, -critical), alpha / d.shape[1])))
