"""A run directory's evidence for the recommendation rules: trials, raw samples, resources, database, stress.

Only the candidate's measured trials count as the run's evidence (`<scenario>/candidate-<n>/`): the base
arm is the reference, and stress steps (`<scenario>/stress-<n>/`) are overloaded on purpose, so their
errors would read as the service's. Stress results enter through `stress.json` instead. Samples and
resource samples are cut to each trial's measured window, as the comparison's figures are. Every file is
optional: a run without a database or resource monitor simply yields fewer findings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from perfci.config import Config
from perfci.model import Arm, Comparison, DatabaseCounters, QueryStat, ResourcePeak, TrialInfo
from perfci.monitor import role_of
from perfci.recommend import Evidence, Finding, recommend
from perfci.rundir import (
    TRIAL_FILE,
    read_database_counters,
    read_resources,
    read_run_record,
    read_samples,
    read_trial_info,
    stress_file,
    trial_dirs,
)
from perfci.stress import StressRun, read_stress
from perfci.summarise import measured_window

# The sample columns the rules read; the rest of a trial's Parquet file stays on disk.
EVIDENCE_COLUMNS = ["start_s", "endpoint", "latency_ms", "status", "ok", "error"]
# The top queries kept per arm after merging trials: enough for a report, small enough for comparison.json.
TOP_QUERIES = 10


def run_scenarios(run_dir: Path, comparison: Comparison | None = None) -> list[str]:
    """The compared scenarios, else every folder of the run that holds trials or a stress result."""
    if comparison is not None:
        return [s.scenario for s in comparison.scenarios]
    return sorted(
        p.name
        for p in run_dir.iterdir()
        if p.is_dir() and (stress_file(run_dir, p.name).is_file() or any(p.glob(f"candidate-*/{TRIAL_FILE}")))
    )


def _trials(run_dir: Path, scenarios: Iterable[str], arm: Arm) -> list[tuple[Path, TrialInfo]]:
    return [(d, read_trial_info(d)) for scenario in scenarios for d in trial_dirs(run_dir, scenario, arm)]


def _in_window(frame: pd.DataFrame, column: str, info: TrialInfo) -> pd.DataFrame:
    start = frame[column]
    return frame[(start >= info.warmup_s) & (start < info.warmup_s + info.duration_s)]


def measured_samples(directory: Path, info: TrialInfo) -> pd.DataFrame | None:
    """A trial's raw samples of its measured window, tagged with scenario and trial; None without a file."""
    samples = read_samples(directory, EVIDENCE_COLUMNS)
    if samples is None:
        return None
    window = measured_window(samples, info.warmup_s, info.duration_s)
    return window.assign(scenario=info.scenario, trial=info.index)


def measured_resources(directory: Path, info: TrialInfo) -> pd.DataFrame | None:
    """A trial's resource samples (t_s, source, cpu_percent, rss_mb) of its measured window."""
    frame = read_resources(directory)
    if frame is None or frame.empty:
        return None
    return _in_window(frame, "t_s", info).assign(scenario=info.scenario, trial=info.index)


def _concat(frames: Iterable[pd.DataFrame | None]) -> pd.DataFrame | None:
    present = [f for f in frames if f is not None and not f.empty]
    return pd.concat(present, ignore_index=True) if present else None


def resource_peaks(resources: pd.DataFrame | None) -> list[ResourcePeak]:
    """Per role (service, database, locust) the peak and mean CPU (percent of one core) and the peak memory.

    Samples are grouped by role over all of the arm's trials, so a report has a row per role, not one per
    container or process of every trial (older runs named containers; they are mapped to their role).
    """
    if resources is None or resources.empty:
        return []
    grouped = resources.assign(source=resources["source"].map(role_of)).groupby("source", sort=True, observed=True)
    return [
        ResourcePeak(
            source=str(source),
            cpu_percent_peak=float(group["cpu_percent"].max()),
            cpu_percent_mean=float(group["cpu_percent"].mean()),
            rss_mb_peak=float(group["rss_mb"].max()),
        )
        for source, group in grouped
    ]


def merge_counters(counters: Sequence[DatabaseCounters]) -> DatabaseCounters | None:
    """Counters summed over trials; queries merged by text (calls and total summed, mean = total / calls)."""
    if not counters:
        return None
    totals: dict[str, int] = {}
    for name, value in counters[0].model_dump().items():
        if isinstance(value, int):
            totals[name] = sum(getattr(c, name) for c in counters)
    calls: dict[str, int] = {}
    total_ms: dict[str, float] = {}
    for c in counters:
        for q in c.top_queries:
            calls[q.query] = calls.get(q.query, 0) + q.calls
            # A file without total time still carries the mean: total = mean x calls.
            total_ms[q.query] = total_ms.get(q.query, 0.0) + (q.total_ms or q.mean_ms * q.calls)
    queries = [
        QueryStat(query=text, calls=n, mean_ms=total_ms[text] / n if n else 0.0, total_ms=total_ms[text])
        for text, n in calls.items()
    ]
    queries.sort(key=lambda q: (-q.total_ms, q.query))
    return DatabaseCounters.model_validate({**totals, "top_queries": queries[:TOP_QUERIES]})


def database_counters(run_dir: Path, scenario: str, arm: Arm) -> DatabaseCounters | None:
    """The arm's PostgreSQL counters over the scenario's trials; None when no trial recorded any."""
    found = [read_database_counters(d) for d in trial_dirs(run_dir, scenario, arm)]
    return merge_counters([c for c in found if c is not None])


def with_run_measurements(run_dir: Path, comparison: Comparison) -> Comparison:
    """The comparison with resource peaks and database counters from the run's files where it lacks them."""
    arms: tuple[Arm, ...] = ("base", "candidate")
    scenarios = []
    for scenario in comparison.scenarios:
        update: dict[str, Any] = {}
        if not scenario.resources:
            peaks = {
                arm: resource_peaks(
                    _concat(measured_resources(d, i) for d, i in _trials(run_dir, [scenario.scenario], arm))
                )
                for arm in arms
            }
            update["resources"] = {arm: p for arm, p in peaks.items() if p}
        if not scenario.database:
            found = {arm: database_counters(run_dir, scenario.scenario, arm) for arm in arms}
            update["database"] = {arm: c for arm, c in found.items() if c is not None}
        scenarios.append(scenario.model_copy(update=update))
    return comparison.model_copy(update={"scenarios": scenarios})


def stress_runs(run_dir: Path, scenarios: Iterable[str] | None = None) -> list[StressRun]:
    """The stress results the run directory holds, in scenario order."""
    names = scenarios if scenarios is not None else sorted(p.name for p in run_dir.iterdir() if p.is_dir())
    return [read_stress(run_dir, name) for name in names if stress_file(run_dir, name).is_file()]


def _service_settings(run_dir: Path, config: Config | None) -> tuple[Mapping[str, str], int]:
    """The service's configured environment and worker count, from the config or the run's snapshot."""
    if config is not None:
        return config.service.env, config.service.workers
    # run.json is perfci's own file; only the two service settings are read from its config snapshot.
    service = read_run_record(run_dir).get("config", {}).get("service", {})
    env = service.get("env", {})
    return {str(k): str(v) for k, v in env.items()}, int(service.get("workers", 1))


def evidence_from_run(run_dir: Path, comparison: Comparison | None = None, config: Config | None = None) -> Evidence:
    """Everything the rules can use from a run directory: the candidate's measured trials and the rest."""
    scenarios = run_scenarios(run_dir, comparison)
    trials = _trials(run_dir, scenarios, "candidate")
    env, workers = _service_settings(run_dir, config)
    return Evidence(
        comparison=with_run_measurements(run_dir, comparison) if comparison is not None else None,
        trials=[info for _, info in trials],
        samples=_concat(measured_samples(d, info) for d, info in trials),
        resources=_concat(measured_resources(d, info) for d, info in trials),
        stress=[run.breaking_point for run in stress_runs(run_dir)],
        service_env=dict(env),
        service_cpu_capacity=100.0 * min(workers, os.cpu_count() or 1),
    )


def findings_for_run(
    run_dir: Path, comparison: Comparison | None = None, config: Config | None = None
) -> list[Finding]:
    """The recommendations for a run directory, most severe first."""
    return recommend(evidence_from_run(run_dir, comparison, config))
