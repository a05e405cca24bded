"""Trends across main's commits on one testbed (baselines/<testbed id>/history), change points by Apache Otava.

Method: each endpoint's metric is a series ordered as main was refreshed. Change points come from Otava's
`compute_change_points` (E-divisive split into windows, then a merge that keeps only change points whose
two-sided t-test p-value is below `max_pvalue` and whose size passes `min_change`), run on the logarithm
of the values so a change is relative, as latency noise is. The p-value threshold is strict (1e-5 by
default) because the split step picks the best of many candidate splits and its t-test does not correct
for that: on seeded flat series with 5 % noise, 1e-3 alarmed on 5-10 % of series, 1e-5 on none of 200,
while a 12 % step is still found in all of them.

A slow drift shows as several change points in a row in the same direction: they are reported as one
finding. E-divisive places a change point where the two sides differ most, which for a drift is its middle
and for a noisy step can be one commit late, so each finding's start is then located by least squares
between its neighbouring findings: a level, a linear ramp from commit j to commit k, a level (a step is
the ramp with k = j). The ramp is kept only when it beats the plain step by BIC, so a step is reported at
its commit and a drift at the commit where it began.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import ValidationError

from perfci.errors import DataError
from perfci.model import SCHEMA_VERSION, Frozen, HistoryLine
from perfci.rundir import read_text_file

Direction = Literal["regression", "improvement"]

# Metrics where a higher value is better; every other metric (latencies, error rate) is better lower.
HIGHER_IS_BETTER = frozenset({"rps"})
# Change points closer than this (in refreshes) and in the same direction are one drift.
DRIFT_GAP = 12


class Series(Frozen):
    """One endpoint's metric across main's refreshes, oldest first."""

    scenario: str
    endpoint: str
    metric: str
    commits: list[str]
    created_at: list[datetime]
    values: list[float]


class ChangePoint(Frozen):
    """Where a series changed level: the first commit of the new level and the size of the change."""

    scenario: str
    endpoint: str
    metric: str
    index: int  # position in the series of the first value at the new level
    commit: str  # the commit where the change (or the drift) began
    previous_commit: str | None  # the last commit before it: the range to bisect
    created_at: datetime
    before: float  # geometric mean of the level before
    after: float  # geometric mean of the level after (after the whole drift, for a drift)
    change: float  # relative: +0.15 = 15 % higher
    p_value: float  # the strongest of the merged change points' p-values
    direction: Direction
    drift_steps: int = 1  # how many change points in a row make up this finding

    @property
    def is_drift(self) -> bool:
        return self.drift_steps > 1


class TrendReport(Frozen):
    scenario: str
    series: list[Series]
    change_points: list[ChangePoint]


def read_history(path: Path) -> list[HistoryLine]:
    """The lines of one history file, validated; a bad line is a `DataError` that names file and line."""
    try:
        text = read_text_file(path, "history file", "restore it with `git checkout origin/main -- <file>`")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist", "run `perfci baseline` on main to start a history") from None
    lines: list[HistoryLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = HistoryLine.model_validate_json(raw)
        except ValidationError as exc:
            if f'"schema_version":{SCHEMA_VERSION + 1}' in raw.replace(" ", ""):
                hint = "upgrade perfci to read it"
            else:
                hint = "remove or repair that line; the other lines are kept"
            raise DataError(f"{path}:{number} is not a valid history line: {exc.errors()[0]['msg']}", hint) from None
        lines.append(line)
    return lines


def series_from_history(lines: Iterable[HistoryLine]) -> list[Series]:
    """Per endpoint and metric, the values in time order; a refresh that lacks a metric is skipped."""
    ordered = sorted(lines, key=lambda line: line.created_at)
    found: dict[tuple[str, str, str], list[tuple[str, datetime, float]]] = {}
    for line in ordered:
        for endpoint, metrics in line.endpoints.items():
            for metric, value in metrics.items():
                if math.isfinite(value):
                    found.setdefault((line.scenario, endpoint, metric), []).append(
                        (line.git_commit, line.created_at, value)
                    )
    return [
        Series(
            scenario=scenario,
            endpoint=endpoint,
            metric=metric,
            commits=[p[0] for p in points],
            created_at=[p[1] for p in points],
            values=[p[2] for p in points],
        )
        for (scenario, endpoint, metric), points in sorted(found.items())
    ]


def change_points(
    series: Series, *, max_pvalue: float = 1e-5, min_change: float = 0.05, window: int = 100
) -> list[ChangePoint]:
    """Otava's change points in one series (see the module docstring), drifts merged into one finding."""
    from otava.analysis import compute_change_points  # type: ignore[import-untyped]

    if len(series.values) < 4 or any(v <= 0 for v in series.values):
        return []
    logs = [math.log(v) for v in series.values]
    found, _ = compute_change_points(logs, window_len=window, max_pvalue=max_pvalue, min_magnitude=0.0)
    indices = sorted(int(cp.index) for cp in found)
    p_values = {int(cp.index): float(cp.stats.pvalue) for cp in found}
    bounds = [0, *indices, len(logs)]
    levels = {
        index: (_geomean(logs[bounds[i] : index]), _geomean(logs[index : bounds[i + 2]]))
        for i, index in enumerate(indices)
    }
    steps = [i for i in indices if abs(levels[i][1] / levels[i][0] - 1) > min_change]
    groups = _drifts(steps, levels)
    findings = []
    for number, group in enumerate(groups):
        low = groups[number - 1][-1] if number > 0 else 0
        high = groups[number + 1][0] if number + 1 < len(groups) else len(logs)
        start = locate_start(logs[low:high]) + low
        findings.append(_finding(series, group, start, levels, p_values))
    return findings


def locate_start(logs: Sequence[float]) -> int:
    """Index of the first value off the old level: the least-squares step, or a ramp when BIC prefers it."""
    values = np.asarray(logs, dtype=np.float64)
    n = len(values)
    positions = np.arange(n)
    best: dict[bool, tuple[float, int]] = {False: (math.inf, 0), True: (math.inf, 0)}
    for j in range(1, n):
        for k in range(j, n):
            # weight of the new level at each position: 0 before j, rising linearly, 1 from k on
            weight = np.clip((positions - j + 1) / (k - j + 1), 0.0, 1.0)
            design = np.column_stack([1 - weight, weight])
            _, residual, _, _ = np.linalg.lstsq(design, values, rcond=None)
            sse = float(residual[0]) if len(residual) else 0.0
            ramp = k > j
            if sse < best[ramp][0]:
                best[ramp] = (sse, j)
    (step_sse, step_at), (ramp_sse, ramp_at) = best[False], best[True]
    if ramp_sse > 0 and step_sse > 0 and n * math.log(step_sse / ramp_sse) > 2 * math.log(n):
        return ramp_at
    return step_at


def _geomean(logs: Sequence[float]) -> float:
    return math.exp(sum(logs) / len(logs))


def _drifts(indices: list[int], levels: dict[int, tuple[float, float]]) -> list[list[int]]:
    """Consecutive change points in the same direction, close together, grouped as one drift."""
    groups: list[list[int]] = []
    for index in indices:
        rising = levels[index][1] > levels[index][0]
        if groups:
            last = groups[-1][-1]
            if index - last <= DRIFT_GAP and (levels[last][1] > levels[last][0]) == rising:
                groups[-1].append(index)
                continue
        groups.append([index])
    return groups


def _finding(
    series: Series,
    group: list[int],
    first: int,
    levels: dict[int, tuple[float, float]],
    p_values: dict[int, float],
) -> ChangePoint:
    last = group[-1]
    before, after = levels[group[0]][0], levels[last][1]
    change = after / before - 1
    worse = change < 0 if series.metric in HIGHER_IS_BETTER else change > 0
    return ChangePoint(
        scenario=series.scenario,
        endpoint=series.endpoint,
        metric=series.metric,
        index=first,
        commit=series.commits[first],
        previous_commit=series.commits[first - 1] if first > 0 else None,
        created_at=series.created_at[first],
        before=before,
        after=after,
        change=change,
        p_value=min(p_values[i] for i in group),
        direction="regression" if worse else "improvement",
        drift_steps=len(group),
    )


def trend_report(
    scenario: str, lines: Iterable[HistoryLine], *, max_pvalue: float = 1e-5, min_change: float = 0.05
) -> TrendReport:
    """Every series of one scenario's history and the change points found in each."""
    series = [s for s in series_from_history(lines) if s.scenario == scenario]
    found = [cp for s in series for cp in change_points(s, max_pvalue=max_pvalue, min_change=min_change)]
    found.sort(key=lambda cp: (cp.created_at, cp.endpoint, cp.metric))
    return TrendReport(scenario=scenario, series=series, change_points=found)


def load_trends(
    history_dir: Path, scenarios: Sequence[str] | None = None, *, max_pvalue: float = 1e-5, min_change: float = 0.05
) -> list[TrendReport]:
    """A report per scenario with a history file in `history_dir` (or per named scenario)."""
    names = list(scenarios) if scenarios else sorted(p.stem for p in history_dir.glob("*.jsonl"))
    if not names:
        raise DataError(f"no history in {history_dir}", "run `perfci baseline` on main to start one")
    return [
        trend_report(name, read_history(history_dir / f"{name}.jsonl"), max_pvalue=max_pvalue, min_change=min_change)
        for name in names
    ]
