"""Collect: what each trial measured becomes one in-memory record, and the run's resource peaks and
PostgreSQL counters are summed from those records.

`perfci run` builds the records from what the load stage holds in memory (`measure/suite.py`); a run
directory read back later (`perfci report`, `perfci merge`) builds them from the trial files. Either way
the comparison gets its resource peaks and counters here, cut to each trial's measured window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perfci.measure.monitor import peaks, role_of
from perfci.model import Arm, Comparison, DatabaseCounters, QueryStat, ResourcePeak, TrialInfo
from perfci.rundir import read_database_counters, read_resources, read_trial_info, trial_dirs

ARMS: tuple[Arm, ...] = ("base", "candidate")
# The top queries kept per arm after merging trials: enough for a report, small enough for comparison.json.
TOP_QUERIES = 10


@dataclass(frozen=True)
class TrialRecord:
    """One trial, collected: its figures, its measured samples, its resource samples, its counters."""

    info: TrialInfo
    window: pd.DataFrame | None  # the samples the figures were computed from (None: not kept)
    resources: pd.DataFrame | None  # resource samples of the measured window (None: none recorded)
    database: DatabaseCounters | None  # None: the target had no PostgreSQL to count


Records = Mapping[str, Mapping[Arm, Sequence[TrialRecord]]]  # per scenario and arm, in trial order


def in_window(frame: pd.DataFrame, column: str, info: TrialInfo) -> pd.DataFrame:
    """The rows of `frame` whose `column` (seconds since the trial's t0) lies in the trial's measured window."""
    start = frame[column]
    return frame[(start >= info.warmup_s) & (start < info.warmup_s + info.duration_s)]


def trial_record(
    info: TrialInfo, window: pd.DataFrame | None, resources: pd.DataFrame | None, database: DatabaseCounters | None
) -> TrialRecord:
    """The record of a trial from what it measured; `resources` is the whole trial's, cut here."""
    kept = None if resources is None or resources.empty else in_window(resources, "t_s", info)
    return TrialRecord(info, window, kept, database)


def read_trial_record(directory: Path) -> TrialRecord:
    """A trial's record from its files, without its samples (the measurements do not need them)."""
    return trial_record(read_trial_info(directory), None, read_resources(directory), read_database_counters(directory))


def read_records(run_dir: Path, scenarios: Iterable[str]) -> dict[str, dict[Arm, list[TrialRecord]]]:
    return {
        scenario: {arm: [read_trial_record(d) for d in trial_dirs(run_dir, scenario, arm)] for arm in ARMS}
        for scenario in scenarios
    }


def resource_peaks(resources: pd.DataFrame | None) -> list[ResourcePeak]:
    """Per role (service, database, locust) the peak and mean CPU (percent of one core) and the peak memory.

    Samples are grouped by role over all of the arm's trials, so a report has a row per role, not one per
    container or process of every trial (older runs named containers; they are mapped to their role).
    """
    if resources is None or resources.empty:
        return []
    return peaks(resources.assign(source=resources["source"].map(role_of)), decimals=None)


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


def concat(frames: Iterable[pd.DataFrame | None]) -> pd.DataFrame | None:
    present = [f for f in frames if f is not None and not f.empty]
    return pd.concat(present, ignore_index=True) if present else None


def with_measurements(comparison: Comparison, records: Records) -> Comparison:
    """The comparison with each scenario's resource peaks and database counters per arm, where it lacks them."""
    scenarios = []
    for scenario in comparison.scenarios:
        arms = records.get(scenario.scenario, {})
        update: dict[str, Any] = {}
        if not scenario.resources:
            peaks = {arm: resource_peaks(concat(r.resources for r in arms.get(arm, ()))) for arm in ARMS}
            update["resources"] = {arm: p for arm, p in peaks.items() if p}
        if not scenario.database:
            found = {
                arm: merge_counters([r.database for r in arms.get(arm, ()) if r.database is not None]) for arm in ARMS
            }
            update["database"] = {arm: c for arm, c in found.items() if c is not None}
        scenarios.append(scenario.model_copy(update=update))
    return comparison.model_copy(update={"scenarios": scenarios})


def with_run_measurements(run_dir: Path, comparison: Comparison) -> Comparison:
    """`with_measurements` for a run directory read back: the records come from its trial files."""
    lacking = [s.scenario for s in comparison.scenarios if not (s.resources and s.database)]
    return with_measurements(comparison, read_records(run_dir, lacking))
