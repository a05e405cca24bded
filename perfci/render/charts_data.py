"""The time series the HTML report plots, binned from a run directory's raw samples and resource samples.

`ChartsData` is the input record of `render_html`: small (one point per second per trial), so the
renderer never touches the raw Parquet files and tests can build it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perfci.model import Arm, Comparison
from perfci.rundir import read_resources, read_samples, trial_dirs


@dataclass(frozen=True)
class TrialSeries:
    """One trial's timeline: per `bin_s` bin from the trial's start, requests/s and p95 latency (all endpoints)."""

    scenario: str
    arm: Arm
    index: int
    t_s: tuple[float, ...]
    rps: tuple[float, ...]
    p95_ms: tuple[float, ...]  # NaN where a bin had no request


@dataclass(frozen=True)
class ResourceSeries:
    """One process's CPU (percent of one core) and memory over one trial."""

    scenario: str
    arm: Arm
    index: int
    source: str
    t_s: tuple[float, ...]
    cpu_percent: tuple[float, ...]
    rss_mb: tuple[float, ...]


@dataclass(frozen=True)
class ChartsData:
    trials: tuple[TrialSeries, ...] = ()
    resources: tuple[ResourceSeries, ...] = ()


def trial_series(samples: pd.DataFrame, scenario: str, arm: Arm, index: int, bin_s: float = 1.0) -> TrialSeries:
    """Bin raw samples (columns start_s, latency_ms) into requests/s and p95 per bin."""
    if samples.empty:
        return TrialSeries(scenario, arm, index, (), (), ())
    bins = np.floor(samples["start_s"].to_numpy(dtype=np.float64) / bin_s).astype(np.int64)
    latency = samples["latency_ms"].to_numpy(dtype=np.float64)
    frame = pd.DataFrame({"bin": bins, "latency": latency})
    grouped = frame.groupby("bin")["latency"]
    counts = grouped.size()
    p95 = grouped.quantile(0.95)
    full = np.arange(max(0, int(bins.min())), int(bins.max()) + 1)
    counts = counts.reindex(full, fill_value=0)
    p95 = p95.reindex(full)
    return TrialSeries(
        scenario,
        arm,
        index,
        tuple(float(b * bin_s) for b in full),
        tuple(float(c / bin_s) for c in counts.to_numpy()),
        tuple(float(v) for v in p95.to_numpy()),
    )


def resource_series(frame: pd.DataFrame, scenario: str, arm: Arm, index: int) -> list[ResourceSeries]:
    """Split resource samples (columns t_s, source, cpu_percent, rss_mb) per source."""
    series = []
    for source, group in frame.sort_values("t_s").groupby("source", sort=True):
        series.append(
            ResourceSeries(
                scenario,
                arm,
                index,
                str(source),
                tuple(float(v) for v in group["t_s"]),
                tuple(float(v) for v in group["cpu_percent"]),
                tuple(float(v) for v in group["rss_mb"]),
            )
        )
    return series


def load_charts_data(run_dir: Path, comparison: Comparison, bin_s: float = 1.0) -> ChartsData:
    """Read every trial's samples and resources of the compared scenarios; missing files are skipped."""
    trials: list[TrialSeries] = []
    resources: list[ResourceSeries] = []
    arms: tuple[Arm, ...] = ("base", "candidate")
    for scenario in comparison.scenarios:
        for arm in arms:
            for directory in trial_dirs(run_dir, scenario.scenario, arm):
                index = int(directory.name.rsplit("-", 1)[1])
                samples = read_samples(directory, ["start_s", "latency_ms"])
                if samples is not None:
                    trials.append(trial_series(samples, scenario.scenario, arm, index, bin_s))
                frame = read_resources(directory)
                if frame is not None:
                    resources += resource_series(frame, scenario.scenario, arm, index)
    return ChartsData(tuple(trials), tuple(resources))
