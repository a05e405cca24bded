"""A run directory's evidence for the recommendation rules: trials, raw samples, resources, database, stress.

Only the candidate's measured trials count as the run's evidence (`<scenario>/candidate-<n>/`): the base
arm is the reference, and stress steps (`<scenario>/stress-<n>/`) are overloaded on purpose, so their
errors would read as the service's. Stress results enter through `stress.json` instead. Samples and
resource samples are cut to each trial's measured window, as the comparison's figures are. Every file is
optional: a run without a database or resource monitor simply yields fewer findings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from perfci.analysis.recommend import Evidence, Finding, recommend
from perfci.collect import concat, in_window
from perfci.config import Config
from perfci.measure.stress import StressRun, read_stress
from perfci.model import Arm, Comparison, TrialInfo
from perfci.rundir import (
    TRIAL_FILE,
    read_resources,
    read_run_record,
    read_samples,
    read_trial_info,
    stress_file,
    trial_dirs,
)
from perfci.trial_figures import measured_window

# The sample columns the rules read; the rest of a trial's Parquet file stays on disk.
EVIDENCE_COLUMNS = ["start_s", "endpoint", "latency_ms", "status", "ok", "error"]


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
    return in_window(frame, "t_s", info).assign(scenario=info.scenario, trial=info.index)


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
    """Everything the rules can use from a run directory: the candidate's measured trials and the rest.

    `comparison` is taken as given: one with its resource peaks and counters (`collect`) lets the rules
    that read them fire.
    """
    scenarios = run_scenarios(run_dir, comparison)
    trials = _trials(run_dir, scenarios, "candidate")
    env, workers = _service_settings(run_dir, config)
    return Evidence(
        comparison=comparison,
        trials=[info for _, info in trials],
        samples=concat(measured_samples(d, info) for d, info in trials),
        resources=concat(measured_resources(d, info) for d, info in trials),
        stress=[run.breaking_point for run in stress_runs(run_dir)],
        service_env=dict(env),
        service_cpu_capacity=100.0 * min(workers, os.cpu_count() or 1),
    )


def findings_for_run(
    run_dir: Path, comparison: Comparison | None = None, config: Config | None = None
) -> list[Finding]:
    """The recommendations for a run directory, most severe first."""
    return recommend(evidence_from_run(run_dir, comparison, config))
