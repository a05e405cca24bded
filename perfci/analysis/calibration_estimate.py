"""Rates you can cite: Clopper-Pearson intervals, and the per-PR false-fail rate and power from the A/A pool.

Method. The pool (perfci/analysis/pool.py) holds real A/A runs. Each run is cut into disjoint blocks of `pairs`
consecutive pairs, never across runs, and every block is judged exactly as a PR run of that many pairs
would be, over all the run's scenarios: one block is one PR-equivalent comparison, and no pair serves in
two of them. A false fail is a block with any regression verdict (any scenario, metric or new error
kind); an alarm counts improvements too. Power comes from the same blocks with an exact shift applied to
the candidate's figures of one endpoint (every block once per case): +5 % p50, +10 % p50, +10 % p95, or a
1 % error rate drawn per trial from a binomial. Exact shifts on A/A data leave out what a real change
does to the rest of the service (CPU taken from other endpoints, a slower closed loop), which the real
knob runs of `perfci calibrate` measure instead.

Every rate carries its Clopper-Pearson 95 % interval (exact: from beta quantiles) and the number of
comparisons behind it, and says how many separate runs they came from: blocks of one run share its
sitting, so they are independent draws only as far as the machine's state is.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from perfci.analysis import analyse
from perfci.analysis.pool import PoolRun
from perfci.config import Config
from perfci.model import EndpointStats, ScenarioComparison

CONFIDENCE = 0.95
Trial = dict[str, EndpointStats]


def clopper_pearson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial proportion."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(scipy_stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(scipy_stats.beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high


@dataclass(frozen=True)
class Rate:
    """k of n comparisons, with the exact interval and how many separate runs the comparisons came from."""

    count: int
    comparisons: int
    runs: int

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.count, self.comparisons)

    def describe(self) -> str:
        if not self.comparisons:
            return "no comparisons"
        low, high = self.interval
        return (
            f"{self.count}/{self.comparisons} = {self.count / self.comparisons:.1%} "
            f"(95 % CI {low:.1%}-{high:.1%}; {_count(self.comparisons, 'comparison')} from {_count(self.runs, 'run')})"
        )


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Shift:
    """An exact change applied to one endpoint's candidate figures."""

    name: str
    metric: str  # p50, p95 (relative factor) or error_rate (absolute share)
    size: float


SHIFTS = (
    Shift("+5 % p50", "p50", 0.05),
    Shift("+10 % p50", "p50", 0.10),
    Shift("+10 % p95", "p95", 0.10),
    Shift("1 % errors", "error_rate", 0.01),
)
INJECTED_ERROR = "injected error (calibration)"


def blocks(runs: Sequence[PoolRun], pairs: int) -> list[tuple[int, dict[str, tuple[list[Trial], list[Trial]]]]]:
    """Disjoint blocks of `pairs` consecutive pairs per run: (run index, scenario -> (base, candidate))."""
    out = []
    for index, run in enumerate(runs):
        for start in range(0, run.pairs - pairs + 1, pairs):
            out.append(
                (
                    index,
                    {
                        scenario: (
                            [p.base for p in chosen[start : start + pairs]],
                            [p.candidate for p in chosen[start : start + pairs]],
                        )
                        for scenario, chosen in run.scenarios.items()
                    },
                )
            )
    return out


def judge_block(
    config: Config, block: dict[str, tuple[list[Trial], list[Trial]]], schedule: str
) -> list[ScenarioComparison]:
    return [
        analyse.compare_scenario(
            scenario,
            base,
            candidate,
            mode="ab",
            settings=config.statistics,
            slos=[],
            schedule="concurrent" if schedule == "concurrent" else "interleaved",
        )
        for scenario, (base, candidate) in sorted(block.items())
    ]


def verdicts(comparisons: Sequence[ScenarioComparison]) -> set[str]:
    """Every metric-level verdict of the comparison, plus "regression" for a new error kind.

    Metric level, not endpoint level: an endpoint's verdict ranks "inconclusive" above "improvement", so
    an improvement on one metric would hide behind another metric's inconclusive.
    """
    found: set[str] = {m.verdict for s in comparisons for e in s.endpoints for m in e.metrics}
    if any(e.new_error_kinds for s in comparisons for e in s.endpoints):
        found.add("regression")
    return found


def shifted(trials: list[Trial], endpoint: str, shift: Shift, rng: random.Random) -> list[Trial]:
    out = []
    for trial in trials:
        figures = trial.get(endpoint)
        if figures is None:
            out.append(trial)
            continue
        if shift.metric == "error_rate":
            extra = sum(rng.random() < shift.size for _ in range(figures.n))
            kinds = {**figures.error_kinds, INJECTED_ERROR: extra} if extra else figures.error_kinds
            changed = figures.model_copy(update={"errors": figures.errors + extra, "error_kinds": kinds})
        else:
            changed = figures.model_copy(update={shift.metric: getattr(figures, shift.metric) * (1 + shift.size)})
        out.append({**trial, endpoint: changed})
    return out


@dataclass(frozen=True)
class PoolEstimate:
    pairs: int  # pairs per comparison (a PR run's)
    runs: int
    false_fail: Rate  # any regression verdict in an A/A block
    any_alarm: Rate  # regression or improvement
    improvement_alarm: Rate
    power: dict[str, Rate]  # shift name -> detected on its endpoint
    off_target: dict[str, Rate]  # shift name -> a regression on any other endpoint
    endpoint: str
    scenario: str
    pair_spread: float | None = None  # sd of the probe's p50 log ratio over every pair of the runs used
    pair_count: int = 0


def pair_spread(runs: Sequence[PoolRun], scenario: str, endpoint: str) -> tuple[float | None, int]:
    """The standard deviation of log(candidate p50 / base p50) per pair: the noise a comparison sees."""
    ratios = [
        math.log(pair.candidate[endpoint].p50 / pair.base[endpoint].p50)
        for run in runs
        for pair in run.scenarios.get(scenario, [])
        if endpoint in pair.base
        and endpoint in pair.candidate
        and min(pair.base[endpoint].p50, pair.candidate[endpoint].p50) > 0
    ]
    return (statistics.stdev(ratios) if len(ratios) >= 2 else None), len(ratios)


def estimate(config: Config, runs: Sequence[PoolRun], pairs: int, scenario: str, endpoint: str) -> PoolEstimate:
    """False fails over every scenario of each block; power of exact shifts on `endpoint` of `scenario`."""
    chosen = blocks(runs, pairs)
    used_runs = len({index for index, _ in chosen})
    fails = alarms = improvements = 0
    detected = dict.fromkeys((s.name for s in SHIFTS), 0)
    off_target = dict.fromkeys((s.name for s in SHIFTS), 0)
    tried = 0
    rng = random.Random(12)
    for index, block in chosen:
        found = verdicts(judge_block(config, block, runs[index].schedule))
        fails += "regression" in found
        alarms += bool(found & {"regression", "improvement"})
        improvements += "improvement" in found
        if scenario not in block:
            continue
        tried += 1
        base, candidate = block[scenario]
        for shift in SHIFTS:
            (result,) = judge_block(
                config, {scenario: (base, shifted(candidate, endpoint, shift, rng))}, runs[index].schedule
            )
            target = next((e for e in result.endpoints if e.endpoint == endpoint), None)
            if target is not None and (
                (shift.metric == "error_rate" and INJECTED_ERROR in target.new_error_kinds)
                or any(m.metric == shift.metric and m.verdict == "regression" for m in target.metrics)
            ):
                detected[shift.name] += 1
            off_target[shift.name] += any(e.verdict == "regression" for e in result.endpoints if e.endpoint != endpoint)
    total = len(chosen)
    spread, pair_count = pair_spread([runs[i] for i in sorted({i for i, _ in chosen})], scenario, endpoint)
    return PoolEstimate(
        pairs=pairs,
        runs=used_runs,
        false_fail=Rate(fails, total, used_runs),
        any_alarm=Rate(alarms, total, used_runs),
        improvement_alarm=Rate(improvements, total, used_runs),
        power={name: Rate(k, tried, used_runs) for name, k in detected.items()},
        off_target={name: Rate(k, tried, used_runs) for name, k in off_target.items()},
        endpoint=endpoint,
        scenario=scenario,
        pair_spread=spread,
        pair_count=pair_count,
    )


def render_estimate(result: PoolEstimate, runs: Sequence[PoolRun]) -> str:
    testbeds = sorted({r.testbed for r in runs})
    loads = [r.load_average for r in runs if r.load_average is not None]
    load = f", load average {min(loads):.1f}-{max(loads):.1f} at the start" if loads else ""
    lines = [
        f"perfci calibration from the A/A pool: {_count(len(runs), 'run')} on {', '.join(testbeds)}{load}; "
        f"comparisons of {result.pairs} pairs, disjoint blocks, never across runs",
        "per-pair spread of the probe's p50 log ratio: "
        + (f"{result.pair_spread:.3f} over {result.pair_count} pairs" if result.pair_spread is not None else "-"),
        f"per-PR false fail (any regression, all scenarios): {result.false_fail.describe()}",
        f"any alarm (regression or improvement):          {result.any_alarm.describe()}",
        f"improvement alarms:                             {result.improvement_alarm.describe()}",
        f"power, exact shifts on {result.scenario} {result.endpoint}:",
    ]
    for name in result.power:
        lines.append(f"  {name:12} found {result.power[name].describe()}")
        lines.append(f"  {'':12} off-target regressions {result.off_target[name].describe()}")
    return "\n".join(lines)
