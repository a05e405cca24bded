"""Main's stored baselines and their history, one folder per testbed: build, write atomically, validate.

A baseline is a testbed's record (perfci/testbed.py): `baselines/<testbed id>/<scenario>.json` and
`baselines/<testbed id>/history/<scenario>.jsonl`, so a run finds the record of its own machine and trends
never mix machines. Files of the flat layout of earlier versions (`baselines/<scenario>.json`) are still
read, as one more testbed's record (their environment says which).

`<scenario>.json` holds per endpoint the per-trial figures and a compact histogram; it is committed, so
it is written small and diff-friendly (sorted keys, numbers rounded to six significant digits, number
lists on one line). `history/<scenario>.jsonl` gains one summary line per refresh.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from perfci.analysis.analyse import no_baseline_note as missing_note
from perfci.errors import DataError
from perfci.model import (
    Baseline,
    BaselineEndpoint,
    Comparison,
    EndpointStats,
    Environment,
    Histogram,
    HistoryLine,
    Say,
)
from perfci.rundir import atomic_write, read_text_file, read_trial_info, trial_dirs
from perfci.stored_json import parse_record
from perfci.testbed import same_testbed, testbed_id
from perfci.trial_figures import histogram as make_histogram

__all__ = [
    "Baseline",
    "append_history",
    "baseline_path",
    "build_baseline",
    "check_baselines",
    "choose_baseline",
    "history_line",
    "history_path",
    "load_baseline",
    "missing_note",
    "read_history",
    "repair_hint",
    "stored_baselines",
    "testbed_home",
    "write_baseline",
]

HISTORY_DIR = "history"
# Six significant digits: far below any change the statistics can see, and short lines in a diff.
SIGNIFICANT_DIGITS = 6
HISTORY_METRICS = ("p50", "p90", "p95", "p99", "mean", "rps", "error_rate")


def testbed_home(directory: Path, environment: Environment) -> Path:
    """The folder of one testbed's baselines and history under the baselines directory."""
    return directory / testbed_id(environment)


def baseline_path(directory: Path, scenario: str) -> Path:
    return directory / f"{scenario}.json"


def history_path(directory: Path, scenario: str) -> Path:
    return directory / HISTORY_DIR / f"{scenario}.jsonl"


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _rounded(figures: EndpointStats) -> EndpointStats:
    return figures.model_copy(
        update={name: _round(getattr(figures, name)) for name in ("p50", "p90", "p95", "p99", "mean", "rps")}
    )


def build_baseline(
    scenario: str,
    *,
    profile: str,
    trials: Sequence[Mapping[str, EndpointStats]],
    histograms: Mapping[str, Histogram],
    environment: Environment,
    git_commit: str,
    created_at: datetime | None = None,
) -> Baseline:
    """A baseline from one run's trials (in order) and pooled histograms; figures rounded as they are stored."""
    if not trials:
        raise ValueError(f"{scenario}: a baseline needs at least one trial")
    endpoints = sorted({e for trial in trials for e in trial})
    return Baseline(
        scenario=scenario,
        profile=profile,
        created_at=created_at or datetime.now(UTC),
        git_commit=git_commit,
        environment=environment,
        endpoints={
            e: BaselineEndpoint(
                trials=[_rounded(trial[e]) for trial in trials if e in trial],
                histogram=histograms.get(e) or make_histogram([]),
            )
            for e in endpoints
        },
    )


# A JSON array of plain numbers, as json.dumps(indent=...) spreads it over one line per element.
_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]")


def baseline_text(baseline: Baseline) -> str:
    """Pretty JSON with sorted keys and each number list on one line: small and readable in a diff."""
    text = json.dumps(baseline.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def write_baseline(directory: Path, baseline: Baseline) -> Path:
    """Write `<directory>/<scenario>.json` through a temporary file and a rename; returns the path."""
    path = baseline_path(directory, baseline.scenario)
    atomic_write(path, baseline_text(baseline))
    return path


def history_line(baseline: Baseline) -> HistoryLine:
    """The summary of one refresh: per endpoint and metric the median over the baseline's trials."""
    return HistoryLine(
        scenario=baseline.scenario,
        created_at=baseline.created_at,
        git_commit=baseline.git_commit,
        endpoints={
            endpoint: {
                metric: _round(statistics.median(_metric(trial, metric) for trial in stored.trials))
                for metric in HISTORY_METRICS
            }
            for endpoint, stored in baseline.endpoints.items()
            if stored.trials
        },
    )


def _metric(figures: EndpointStats, metric: str) -> float:
    return figures.error_rate if metric == "error_rate" else float(getattr(figures, metric))


def append_history(directory: Path, line: HistoryLine) -> Path:
    """Add one line to `<directory>/history/<scenario>.jsonl`; the file is replaced whole, never half-written."""
    path = history_path(directory, line.scenario)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    record = json.dumps(line.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    atomic_write(path, existing + record + "\n")
    return path


def load_baseline(directory: Path, scenario: str) -> Baseline | None:
    """The stored baseline of a scenario, validated; `None` when there is none (see `missing_note`).

    A file that is not JSON, has the wrong shape, belongs to another scenario or was written by a newer
    perfci raises `DataError` (exit 2) naming the file: a broken baseline must never pass as "no change".
    """
    path = baseline_path(directory, scenario)
    restore = repair_hint(path)
    try:
        text = read_text_file(path, "baseline", restore)
    except FileNotFoundError:
        return None
    baseline = parse_record(text, Baseline, where=str(path), what="baseline", hint=restore)
    if baseline.scenario != scenario:
        raise DataError(f"{path} holds scenario {baseline.scenario!r}, not {scenario!r}", restore)
    problem = implausible_figures(baseline)
    if problem:
        raise DataError(f"{path} is not a usable baseline: {problem}", restore)
    return baseline


def repair_hint(path: Path) -> str:
    return f"restore it with `git checkout origin/main -- {path}`, or measure a new one with `perfci baseline`"


_POSITIVE_FIGURES = ("p50", "p90", "p95", "p99", "mean")


def implausible_figures(baseline: Baseline) -> str | None:
    """What makes a well-formed baseline unusable for a comparison, or None.

    The statistics take logs of these figures: NaN, infinity or zero would crash the analysis after the
    whole run was measured, so the file is refused before any load instead.
    """
    if not baseline.endpoints:
        return "it has no endpoints"
    for endpoint, stored in baseline.endpoints.items():
        if not stored.trials:
            return f"{endpoint} has no trials"
        for number, trial in enumerate(stored.trials, start=1):
            for name in _POSITIVE_FIGURES:
                value = getattr(trial, name)
                if not math.isfinite(value) or value <= 0:
                    return f"{endpoint} trial {number}: {name} is {value}, not a positive number"
            if not math.isfinite(trial.rps) or trial.rps < 0 or trial.n < 0 or not 0 <= trial.errors <= trial.n:
                return f"{endpoint} trial {number}: n, errors or rps out of range"
    return None


def read_history(directory: Path, scenario: str) -> list[HistoryLine]:
    """The history lines of a scenario in file order; `[]` when it has none. A bad line is a `DataError`."""
    path = history_path(directory, scenario)
    try:
        text = read_text_file(path, "history file", "restore it with `git checkout origin/main -- <file>`")
    except FileNotFoundError:
        return []
    lines: list[HistoryLine] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        where = f"{path}:{number}"
        lines.append(
            parse_record(raw_line, HistoryLine, where=where, what="history line", hint="remove or repair that line")
        )
    return lines


def stored_baselines(directory: Path, scenario: str) -> list[Baseline]:
    """Every testbed's baseline of a scenario (and a flat-layout one), each validated; newest first.

    Any of them being corrupt is a `DataError` naming the file, whichever testbed it belongs to: a run
    checks them all before it starts, so a broken file is found before minutes of load, not after.
    """
    folders = [directory, *sorted(p.parent for p in directory.glob(f"*/{scenario}.json"))]
    found = [b for b in (load_baseline(folder, scenario) for folder in folders) if b is not None]
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def set_aside_unusable(directory: Path, scenario: str) -> list[Path]:
    """Rename every unusable stored baseline of a scenario (any testbed's, or a flat-layout one) to
    `<name>.unusable`; the renamed paths. `perfci baseline` does this once it has written a good one: the
    hint of a corrupt file says to run it, and a run checks every testbed's file before it starts."""
    moved: list[Path] = []
    for folder in [directory, *sorted(p.parent for p in directory.glob(f"*/{scenario}.json"))]:
        path = baseline_path(folder, scenario)
        try:
            load_baseline(folder, scenario)
        except DataError:
            aside = path.with_name(path.name + ".unusable")
            path.replace(aside)  # a file, or a folder in its place
            moved.append(aside)
    return moved


def check_baselines(directory: Path, scenarios: Sequence[str]) -> None:
    """Validate every stored baseline of these scenarios; raises `DataError` on the first bad one."""
    for scenario in scenarios:
        stored_baselines(directory, scenario)


def choose_baseline(directory: Path, scenario: str, here: Environment) -> tuple[Baseline | None, Baseline | None]:
    """(this testbed's baseline, or None; else the newest baseline of another testbed, or None).

    The match is decided by the fingerprint in the file, not by the folder it sits in, so a file copied
    into the wrong folder cannot pass as comparable.
    """
    stored = stored_baselines(directory, scenario)
    mine = next((b for b in stored if same_testbed(b.environment, here)), None)
    return (mine, None) if mine is not None else (None, stored[0] if stored else None)


def store_run(
    directory: Path,
    run_dir: Path,
    comparison: Comparison,
    scenarios: Sequence[str],
    *,
    profile: str,
    git_commit: str,
    say: Say,
) -> list[Path]:
    """A measured run's candidate trials as this testbed's baselines: per scenario `<scenario>.json` and a
    history line (an unusable file of the scenario is set aside). The files written, in order."""
    measured_env = comparison.candidate.environment
    assert measured_env is not None
    written: list[Path] = []
    home = testbed_home(directory, measured_env)
    for scenario in scenarios:
        infos = [read_trial_info(d) for d in trial_dirs(run_dir, scenario, "candidate")]
        histograms = {
            e.endpoint: e.candidate_histogram
            for s in comparison.scenarios
            if s.scenario == scenario
            for e in s.endpoints
            if e.candidate_histogram is not None
        }
        stored = build_baseline(
            scenario,
            profile=profile,
            trials=[t.endpoints for t in infos],
            histograms=histograms,
            environment=measured_env,
            git_commit=git_commit,
        )
        written.append(write_baseline(home, stored))
        written.append(append_history(home, history_line(stored)))
        for aside in set_aside_unusable(directory, scenario):
            say(f"perfci: an unusable baseline was set aside as {aside}")
    return written
