"""Benchmark: the PR's decision rule on simulated PRs: per-PR false fails, power, pairs run, with intervals.

Run from the project root with perfci importable (pip install -e ., or PYTHONPATH=.):
    python benchmarks/decision_rule.py [--prs 1000] [--case aa ...] [--budget 16] [--p50-min-effect 0.05]
        [--p95-min-effect 0.10]
Each simulated PR has 4 scenarios of 5 endpoints (p50, p95 and error rate judged, the error rates zero and
so out of the family: 40 tests) and runs exactly what `perfci run` does: concurrent pairs looked at after
8, 12 and 16 pairs (analyse.decide_look), then every scenario judged under one family (analyse.judge).
Noise per pair, on the log ratio: p50 sd 0.06 and p95 sd 0.10 (what concurrent pairs showed on the 2-core
machine of docs/statistics.md), a fifth of it shared by a scenario's endpoints, p50 and p95 of an
endpoint correlated 0.5. Every rate is printed with its Clopper-Pearson 95 % interval and the number of
simulated PRs behind it.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from perfci.analysis.analyse import ScenarioEvidence, decide_look, gather_scenario, judge
from perfci.analysis.stats import planned_looks
from perfci.model import EndpointStats, StatsSettings

SETTINGS = StatsSettings()
SCENARIOS, ENDPOINTS = 4, 5
BUDGET = 16  # pairs; --budget changes it
SD = {"p50": 0.06, "p95": 0.10}
SHARED = 0.2  # share of the variance an endpoint's log ratio shares with the scenario's other endpoints
REQUESTS = 400

Effect = Callable[[int, int], tuple[float, float]]  # (scenario, endpoint) -> log effect on p50, on p95


@dataclass(frozen=True)
class Case:
    name: str
    effect: Effect
    target: tuple[int, int] | None = None  # the changed (scenario, endpoint), whose regression is "found"
    transient_kind_rate: float = 0.0  # chance per trial and arm of a transient error kind on each endpoint


def _none(_s: int, _e: int) -> tuple[float, float]:
    return 0.0, 0.0


def _margin(_s: int, _e: int) -> tuple[float, float]:
    return math.log1p(SETTINGS.min_effect["p50"]), math.log1p(SETTINGS.min_effect["p95"])


def _one(p50: float, p95: float) -> Effect:
    def effect(s: int, e: int) -> tuple[float, float]:
        return (math.log1p(p50), math.log1p(p95)) if (s, e) == (0, 0) else (0.0, 0.0)

    return effect


CASES = {
    "aa": Case("A/A: no change anywhere", _none),
    "margin": Case("every test exactly at its minimum effect (the null's worst case)", _margin),
    "kinds": Case("A/A with a transient error kind, 5 % of trials per arm and endpoint", _none, None, 0.05),
    "p50+5": Case("+5 % p50 on one endpoint", _one(0.05, 0.0), (0, 0)),
    "p50+10": Case("+10 % p50 on one endpoint", _one(0.10, 0.0), (0, 0)),
    "p50+15": Case("+15 % p50 on one endpoint", _one(0.15, 0.0), (0, 0)),
    "p95+10": Case("+10 % p95 on one endpoint", _one(0.0, 0.10), (0, 0)),
    "p95+20": Case("+20 % p95 on one endpoint", _one(0.0, 0.20), (0, 0)),
    "p95+30": Case("+30 % p95 on one endpoint", _one(0.0, 0.30), (0, 0)),
}


def _figures(p50: float, p95: float, kind: bool) -> EndpointStats:
    return EndpointStats(
        n=REQUESTS,
        errors=int(kind),
        p50=p50,
        p90=p95 * 0.8,
        p95=p95,
        p99=p95 * 1.3,
        mean=p50 * 1.2,
        rps=REQUESTS / 6,
        error_kinds={"Timeout": 1} if kind else {},
    )


def _scenario_pairs(
    rng: np.random.Generator, scenario: int, case: Case
) -> tuple[list[dict[str, EndpointStats]], list[dict[str, EndpointStats]]]:
    base, candidate = [], []
    for _ in range(BUDGET):
        shared = rng.normal(0, 1, 2)
        b: dict[str, EndpointStats] = {}
        c: dict[str, EndpointStats] = {}
        for e in range(ENDPOINTS):
            own = rng.normal(0, 1, 2)
            p95_noise = 0.5 * own[0] + math.sqrt(0.75) * own[1]
            d50 = SD["p50"] * (math.sqrt(SHARED) * shared[0] + math.sqrt(1 - SHARED) * own[0])
            d95 = SD["p95"] * (math.sqrt(SHARED) * shared[1] + math.sqrt(1 - SHARED) * p95_noise)
            e50, e95 = case.effect(scenario, e)
            level = 3.0 * (e + 1) * math.exp(rng.normal(0, 0.1))
            kinds = rng.random(2) < case.transient_kind_rate
            b[f"GET /{e}"] = _figures(level, 2 * level, bool(kinds[0]))
            c[f"GET /{e}"] = _figures(level * math.exp(e50 + d50), 2 * level * math.exp(e95 + d95), bool(kinds[1]))
        base.append(b)
        candidate.append(c)
    return base, candidate


def simulate_pr(rng: np.random.Generator, case: Case) -> tuple[bool, bool, bool, list[int]]:
    """(false fail or found, any alarm elsewhere, any improvement, pairs per scenario) of one simulated PR."""
    looks = planned_looks(BUDGET)
    evidence: list[ScenarioEvidence] = []
    pairs_run: list[int] = []
    for scenario in range(SCENARIOS):
        base, candidate = _scenario_pairs(rng, scenario, case)
        for n in looks:
            found = gather_scenario(
                f"s{scenario}", base[:n], candidate[:n], mode="ab", settings=SETTINGS, slos=[], looks=looks
            )
            if n == looks[-1] or decide_look(found, SETTINGS, other_scenarios=SCENARIOS - 1) is not None:
                break
        evidence.append(found)
        pairs_run.append(n)
    result = judge(evidence, SETTINGS)
    regressions = {
        (s, int(e.endpoint.split("/")[1]))
        for s, sc in enumerate(result.scenarios)
        for e in sc.endpoints
        if e.verdict == "regression"
    }
    improvements = any(e.verdict == "improvement" for sc in result.scenarios for e in sc.endpoints)
    if case.target is None:
        return bool(regressions), False, improvements, pairs_run
    return case.target in regressions, bool(regressions - {case.target}), improvements, pairs_run


def interval(k: int, n: int) -> str:
    low = 0.0 if k == 0 else float(scipy_stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(scipy_stats.beta.ppf(0.975, k + 1, n - k))
    return f"{k}/{n} = {100 * k / n:.2f} % (95 % CI {100 * low:.2f} - {100 * high:.2f} %)"


def main() -> None:
    global BUDGET, SETTINGS  # noqa: PLW0603 (a benchmark's knobs, set once before anything runs)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=1000)
    parser.add_argument("--case", action="append", choices=sorted(CASES), dest="cases", help="default: all")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--budget", type=int, default=BUDGET, help="pairs per scenario at most")
    parser.add_argument("--p50-min-effect", type=float, default=SETTINGS.min_effect["p50"])
    parser.add_argument("--p95-min-effect", type=float, default=SETTINGS.min_effect["p95"])
    args = parser.parse_args()
    BUDGET = args.budget
    chosen = {"p50": args.p50_min_effect, "p95": args.p95_min_effect}
    SETTINGS = SETTINGS.model_copy(update={"min_effect": {**SETTINGS.min_effect, **chosen}})
    print(
        f"{SCENARIOS} scenarios x {ENDPOINTS} endpoints, looks {planned_looks(BUDGET)}, alpha {SETTINGS.alpha}, "
        f"min effect p50 {SETTINGS.min_effect['p50']}, p95 {SETTINGS.min_effect['p95']}, {args.prs} PRs a case"
    )
    for key in args.cases or list(CASES):
        case = CASES[key]
        rng = np.random.default_rng(args.seed)
        hits = others = improved = 0
        pairs: list[int] = []
        started = time.perf_counter()
        for _ in range(args.prs):
            hit, other, improvement, run = simulate_pr(rng, case)
            hits += hit
            others += other
            improved += improvement
            pairs.extend(run)
        what = "found" if case.target else "false fails"
        print(f"\n{case.name} ({time.perf_counter() - started:.0f} s)")
        print(f"  {what}: {interval(hits, args.prs)}")
        if case.target:
            print(f"  other endpoints failed: {interval(others, args.prs)}")
        print(f"  improvement verdicts: {interval(improved, args.prs)}")
        print(
            f"  pairs per scenario: mean {np.mean(pairs):.1f}, "
            + ", ".join(f"{n}: {pairs.count(n)}" for n in planned_looks(BUDGET))
        )


if __name__ == "__main__":
    main()
