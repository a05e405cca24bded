"""Calibration: prove the detector on this machine with A/A runs and injected regressions of known size.

Each case boots two arms of the same code that differ only in the service's regression knobs, runs
`runs x trials` interleaved pairs, and judges every consecutive block of `trials` pairs exactly as a PR run
would. A/A blocks measure the false-alarm rate; the knob cases measure the detection rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from perfci.adapters import userservice
from perfci.analysis import analyse
from perfci.analysis.calibration_estimate import clopper_pearson
from perfci.config import Config
from perfci.errors import ConfigError, ExitCode
from perfci.model import EndpointComparison, EndpointStats, Say, ScenarioComparison
from perfci.rundir import CALIBRATION_FILE, atomic_write, new_run_dir

# The endpoint the injected regressions hit: frequent in every journey, cheap, so small shifts are visible.
PROBE_ENDPOINT = "GET /users/me"
PROBE_SCENARIO = "journeys"


@dataclass(frozen=True)
class Case:
    name: str
    knobs: dict[str, str]  # the service's regression knobs for the candidate arm (adapters/userservice.py)
    expect_metric: str | None  # the metric that should flag PROBE_ENDPOINT; None for A/A


@dataclass(frozen=True)
class CaseResult:
    case: str
    knobs: dict[str, str]
    comparisons: int
    any_alarm: int  # comparisons with a regression or improvement on any metric of any endpoint
    detected: int  # comparisons where the probe endpoint's expected metric was judged a regression
    off_target_alarms: int  # comparisons with an alarm on an endpoint other than the probe
    observed_change: list[float]  # per comparison, the estimated change of the probe's expected metric
    improvement_alarms: int = 0  # comparisons with an improvement on any metric (A/A: a false alarm too)


def cases(base_p50_ms: float, base_p95_ms: float) -> list[Case]:
    """Injected regressions sized from the A/A arm's own latency of the probe endpoint."""

    def delay(ms: float, fraction: float = 1.0) -> dict[str, str]:
        return userservice.delay(PROBE_ENDPOINT, ms, fraction)

    def burn(ms: float, fraction: float = 1.0) -> dict[str, str]:
        return userservice.burn(PROBE_ENDPOINT, ms, fraction)

    return [
        Case("+5 % latency", delay(0.05 * base_p50_ms), "p50"),
        Case("+10 % latency", delay(0.10 * base_p50_ms), "p50"),
        Case("+25 % latency", delay(0.25 * base_p50_ms), "p50"),
        Case("tail only (10 % of requests)", delay(max(base_p95_ms, 1.0), 0.10), "p95"),
        Case("1 % errors", userservice.errors(PROBE_ENDPOINT, 0.01), "error_rate"),
        Case("+5 % CPU burn", burn(0.05 * base_p50_ms), "p50"),
        Case("+10 % CPU burn", burn(0.10 * base_p50_ms), "p50"),
        Case("CPU burn tail (10 % of requests)", burn(max(base_p95_ms, 1.0), 0.10), "p95"),
    ]


def judge_blocks(
    config: Config, base: list[dict[str, EndpointStats]], candidate: list[dict[str, EndpointStats]], block: int
) -> list[ScenarioComparison]:
    """One comparison per consecutive block of `block` pairs, as a PR run of that many pairs would judge."""
    out = []
    for start in range(0, len(candidate) - block + 1, block):
        out.append(
            analyse.compare_scenario(
                PROBE_SCENARIO,
                base[start : start + block],
                candidate[start : start + block],
                mode="ab",
                settings=config.statistics,
                slos=[],
                schedule=config.profile.ab_schedule,
            )
        )
    return out


def _alarming(endpoint: EndpointComparison) -> set[str]:
    """The endpoint's metric-level alarms: its own verdict ranks inconclusive above improvement and hides it."""
    found = {m.verdict for m in endpoint.metrics} & {"regression", "improvement"}
    return found | ({"regression"} if endpoint.new_error_kinds else set())


def summarise_case(case: Case, comparisons: Sequence[ScenarioComparison]) -> CaseResult:
    alarms = detected = off_target = improvements = 0
    changes: list[float] = []
    for comparison in comparisons:
        flagged = {e.endpoint: _alarming(e) for e in comparison.endpoints if _alarming(e)}
        alarms += bool(flagged)
        improvements += any("improvement" in found for found in flagged.values())
        off_target += any(e != PROBE_ENDPOINT for e in flagged)
        probe = next((e for e in comparison.endpoints if e.endpoint == PROBE_ENDPOINT), None)
        if probe is None or case.expect_metric is None:
            continue
        if case.expect_metric == "error_rate" and probe.new_error_kinds:
            detected += 1
            continue
        metric = next((m for m in probe.metrics if m.metric == case.expect_metric), None)
        if metric is not None:
            changes.append(round(metric.change, 4))
            detected += metric.verdict == "regression"
    return CaseResult(case.name, case.knobs, len(comparisons), alarms, detected, off_target, changes, improvements)


def run_calibration(
    config: Config, *, runs: int, say: Say, case_names: Sequence[str] | None = None, progress: bool = True
) -> int:
    from perfci import pipeline
    from perfci.measure.suite import Measured, measure

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}", "pass --runs 10 for a meaningful rate")
    pairs = config.profile.trials
    calibration = config.model_copy(
        update={
            "scenarios": [PROBE_SCENARIO],
            "profile": config.profile.model_copy(update={"trials": pairs * runs}),
        }
    )
    root = new_run_dir(config.runs_dir, "calibrate")
    say(f"perfci: calibration in {root}: {runs} comparisons of {pairs} pairs per case, profile {config.profile_name}")

    def measure_case(case: Case) -> tuple[CaseResult, Measured]:
        say(f"perfci: calibration case {case.name!r} {case.knobs or ''}")
        options = pipeline.RunOptions(
            label=case.name, candidate_env=case.knobs, order_seed=len(results), progress=progress
        )
        measured = measure(calibration, options, root / _slug(case.name), config.project_root, say)
        arms = measured.trials[PROBE_SCENARIO]
        blocks = judge_blocks(
            config, [t.endpoints for t in arms["base"]], [t.endpoints for t in arms["candidate"]], pairs
        )
        return summarise_case(case, blocks), measured

    results: list[CaseResult] = []
    aa_result, aa = measure_case(Case("A/A", {}, None))
    results.append(aa_result)
    base_trials = aa.trials[PROBE_SCENARIO]["base"]
    probe = analyse.median_stats([t.endpoints[PROBE_ENDPOINT] for t in base_trials if PROBE_ENDPOINT in t.endpoints])
    for case in cases(probe.p50, probe.p95):
        if not case_names or case.name in case_names:
            results.append(measure_case(case)[0])
    atomic_write(root / CALIBRATION_FILE, json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(render_calibration(results, config, probe.p50, probe.p95))
    return int(ExitCode.OK)


def render_calibration(results: Sequence[CaseResult], config: Config, p50: float, p95: float) -> str:
    """One row per case; every rate as k/n with its Clopper-Pearson 95 % interval.

    The n comparisons of a case are consecutive blocks of one sitting on one machine: they say how this
    machine behaved then, not how every machine does (the A/A pool, `--from-pool`, spans runs).
    """
    lines = [
        f"perfci calibration: profile {config.profile_name} ({config.profile.trials} pairs per comparison, "
        f"{config.profile.duration_s:g} s per trial), scenario {PROBE_SCENARIO}, probe {PROBE_ENDPOINT} "
        f"(base p50 {p50:.2f} ms, p95 {p95:.2f} ms); rates: k/n (95 % Clopper-Pearson interval), "
        "n comparisons of one sitting",
        f"{'case':34} {'any alarm':>22} {'improvement':>22} {'detected':>22} {'off-target':>22}  median change",
    ]
    for r in results:
        median = sorted(r.observed_change)[len(r.observed_change) // 2] if r.observed_change else None
        lines.append(
            f"{r.case:34} {_rate(r.any_alarm, r.comparisons):>22} {_rate(r.improvement_alarms, r.comparisons):>22} "
            f"{(_rate(r.detected, r.comparisons) if r.case != 'A/A' else '-'):>22} "
            f"{_rate(r.off_target_alarms, r.comparisons):>22}  " + (f"{median:+.1%}" if median is not None else "-")
        )
    return "\n".join(lines)


def _rate(count: int, total: int) -> str:
    low, high = clopper_pearson(count, total)
    return f"{count}/{total} ({low:.0%}-{high:.0%})"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()


def grow_pool(config: Config, *, say: Say, note: str = "", progress: bool = True) -> int:
    """Run one A/A of the configured suite (both arms this checkout) and add it to the committed pool."""
    from perfci import pipeline
    from perfci.analysis.pool import POOL_DIR, build_pool_run, machine_load, write_pool_run
    from perfci.measure.suite import measure

    load_before = machine_load()
    run_dir = new_run_dir(config.runs_dir, "pool")
    say(f"perfci: A/A run for the calibration pool in {run_dir} (load average {load_before})")
    options = pipeline.RunOptions(label="pool", progress=progress)
    measured = measure(config, options, run_dir, config.project_root, say)
    record = build_pool_run(
        environment=measured.environment,
        profile=config.profile_name,
        schedule=config.profile.ab_schedule,
        duration_s=config.profile.duration_s,
        users=config.profile.users,
        trials={
            scenario: {arm: [t.endpoints for t in trials] for arm, trials in arms.items()}
            for scenario, arms in measured.trials.items()
        },
        note=note,
        load_average=load_before,
    )
    path = write_pool_run(config.project_root / POOL_DIR, record)
    print(path)
    return int(ExitCode.OK)


def estimate_from_pool(config: Config, *, testbed: str | None, say: Say) -> int:
    """Per-PR false-fail rate and power from disjoint blocks of the pool, each with its exact interval."""
    from perfci.analysis.calibration_estimate import estimate, render_estimate
    from perfci.analysis.pool import POOL_DIR, read_pool
    from perfci.errors import DataError

    directory = config.project_root / POOL_DIR
    runs = read_pool(directory, testbed)
    pairs = config.profile.trials
    usable = [r for r in runs if r.pairs >= pairs]
    if not usable:
        raise DataError(
            f"no A/A run in {directory} has {pairs} pairs" + (f" on testbed {testbed}" if testbed else ""),
            "grow the pool (`perfci calibrate --grow-pool`) or judge shorter blocks with --trials N",
        )
    say(f"perfci: {len(usable)} of {len(runs)} pool runs have at least {pairs} pairs")
    print(render_estimate(estimate(config, usable, pairs, PROBE_SCENARIO, PROBE_ENDPOINT), usable))
    return int(ExitCode.OK)
