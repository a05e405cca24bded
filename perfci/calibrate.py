"""Calibration: prove the detector on this machine with A/A runs and injected regressions of known size.

Each case boots two arms of the same code that differ only in the service's regression knobs, runs
`runs x trials` interleaved pairs, and judges every consecutive block of `trials` pairs exactly as a PR run
would. A/A blocks measure the false-alarm rate; the knob cases measure the detection rate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from perfci import analyse
from perfci.config import Config
from perfci.errors import ConfigError, ExitCode
from perfci.model import EndpointStats, ScenarioComparison
from perfci.results import atomic_write, new_run_dir

Say = Callable[[str], None]
# The endpoint the injected regressions hit: frequent in every journey, cheap, so small shifts are visible.
PROBE_ENDPOINT = "GET /users/me"
PROBE_SCENARIO = "journeys"


@dataclass(frozen=True)
class Case:
    name: str
    knobs: dict[str, str]  # USERSVC_* settings of the candidate arm
    expect_metric: str | None  # the metric that should flag PROBE_ENDPOINT; None for A/A


@dataclass(frozen=True)
class CaseResult:
    case: str
    knobs: dict[str, str]
    comparisons: int
    any_alarm: int  # comparisons with any verdict other than no_change/inconclusive, on any endpoint
    detected: int  # comparisons where the probe endpoint's expected metric was judged a regression
    off_target_alarms: int  # comparisons with an alarm on an endpoint other than the probe
    observed_change: list[float]  # per comparison, the estimated change of the probe's expected metric


def cases(base_p50_ms: float, base_p95_ms: float) -> list[Case]:
    """Injected regressions sized from the A/A arm's own latency of the probe endpoint."""

    def delay(ms: float, fraction: float = 1.0) -> dict[str, str]:
        suffix = "" if fraction >= 1 else f"@{fraction:g}"
        return {"USERSVC_KNOB_DELAY": f"{PROBE_ENDPOINT}={ms:.2f}{suffix}"}

    return [
        Case("+5 % latency", delay(0.05 * base_p50_ms), "p50"),
        Case("+10 % latency", delay(0.10 * base_p50_ms), "p50"),
        Case("+25 % latency", delay(0.25 * base_p50_ms), "p50"),
        Case("tail only (10 % of requests)", delay(max(base_p95_ms, 1.0), 0.10), "p95"),
        Case("1 % errors", {"USERSVC_KNOB_ERRORS": f"{PROBE_ENDPOINT}=0.01"}, "error_rate"),
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


def summarise_case(case: Case, comparisons: Sequence[ScenarioComparison]) -> CaseResult:
    alarms = detected = off_target = 0
    changes: list[float] = []
    for comparison in comparisons:
        flagged = [e for e in comparison.endpoints if e.verdict in ("regression", "improvement")]
        alarms += bool(flagged)
        off_target += any(e.endpoint != PROBE_ENDPOINT for e in flagged)
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
    return CaseResult(case.name, case.knobs, len(comparisons), alarms, detected, off_target, changes)


def run_calibration(
    config: Config, *, runs: int, say: Say, case_names: Sequence[str] | None = None, progress: bool = True
) -> int:
    from perfci import pipeline

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

    def measure(case: Case) -> tuple[CaseResult, pipeline.Measured]:
        say(f"perfci: calibration case {case.name!r} {case.knobs or ''}")
        options = pipeline.RunOptions(
            label=case.name, candidate_env=case.knobs, order_seed=len(results), progress=progress
        )
        measured = pipeline.measure(calibration, options, root / _slug(case.name), config.project_root, say)
        arms = measured.trials[PROBE_SCENARIO]
        blocks = judge_blocks(
            config, [t.endpoints for t in arms["base"]], [t.endpoints for t in arms["candidate"]], pairs
        )
        return summarise_case(case, blocks), measured

    results: list[CaseResult] = []
    aa_result, aa = measure(Case("A/A", {}, None))
    results.append(aa_result)
    base_trials = aa.trials[PROBE_SCENARIO]["base"]
    probe = analyse.median_stats([t.endpoints[PROBE_ENDPOINT] for t in base_trials if PROBE_ENDPOINT in t.endpoints])
    for case in cases(probe.p50, probe.p95):
        if not case_names or case.name in case_names:
            results.append(measure(case)[0])
    atomic_write(root / "calibration.json", json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(render_calibration(results, config, probe.p50, probe.p95))
    return int(ExitCode.OK)


def render_calibration(results: Sequence[CaseResult], config: Config, p50: float, p95: float) -> str:
    lines = [
        f"perfci calibration: profile {config.profile_name} ({config.profile.trials} pairs per comparison, "
        f"{config.profile.duration_s:g} s per trial), scenario {PROBE_SCENARIO}, probe {PROBE_ENDPOINT} "
        f"(base p50 {p50:.2f} ms, p95 {p95:.2f} ms)",
        f"{'case':34} {'comparisons':>11} {'any alarm':>10} {'detected':>9} {'off-target':>10}  median change",
    ]
    for r in results:
        median = sorted(r.observed_change)[len(r.observed_change) // 2] if r.observed_change else None
        lines.append(
            f"{r.case:34} {r.comparisons:>11} {r.any_alarm:>10} "
            f"{(str(r.detected) if r.case != 'A/A' else '-'):>9} {r.off_target_alarms:>10}  "
            + (f"{median:+.1%}" if median is not None else "-")
        )
    return "\n".join(lines)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
