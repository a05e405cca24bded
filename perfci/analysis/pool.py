"""The committed pool of real A/A pairs: gather one run into it, read it back, one testbed at a time.

Calibration figures are only as good as the comparisons behind them, and consecutive slices of one
sitting are not independent runs. So every A/A run of the suite is kept, small (per trial and endpoint
the statistics only, never raw samples), in `calibration/pool/<testbed id>/<UTC date>-<run>.json`, with
the environment and the load the machine was under. The pool grows across days and machines; estimates
(perfci/analysis/calibration_estimate.py) resample disjoint blocks of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from perfci.model import SCHEMA_VERSION, EndpointStats, Environment, Frozen
from perfci.rundir import atomic_write, read_text_file
from perfci.stored_json import parse_record
from perfci.testbed import testbed_id

POOL_DIR = Path("calibration") / "pool"
REPAIR_POOL_RUN = "restore it from git or delete it"


class PoolPair(Frozen):
    """One A/A pair: both arms ran the same code at the same moment (or back to back)."""

    base: dict[str, EndpointStats]
    candidate: dict[str, EndpointStats]


class PoolRun(Frozen):
    """One A/A run of the suite, as kept in the pool."""

    schema_version: int = SCHEMA_VERSION
    created_at: datetime
    testbed: str
    environment: Environment
    profile: str
    schedule: str  # interleaved or concurrent
    duration_s: float
    users: int
    # What else the machine was doing: the 1-minute load average at the start and a free-text note.
    load_average: float | None = None
    note: str = ""
    scenarios: dict[str, list[PoolPair]]

    @property
    def pairs(self) -> int:
        return min((len(p) for p in self.scenarios.values()), default=0)


def build_pool_run(
    *,
    environment: Environment,
    profile: str,
    schedule: str,
    duration_s: float,
    users: int,
    trials: Mapping[str, Mapping[str, Sequence[Mapping[str, EndpointStats]]]],
    note: str = "",
    created_at: datetime | None = None,
    load_average: float | None = None,
) -> PoolRun:
    """A pool record from one run's trials per scenario and arm (paired by index)."""
    scenarios = {
        scenario: [
            PoolPair(base=dict(b), candidate=dict(c)) for b, c in zip(arms["base"], arms["candidate"], strict=False)
        ]
        for scenario, arms in trials.items()
    }
    return PoolRun(
        created_at=created_at or datetime.now(UTC),
        testbed=testbed_id(environment),
        environment=environment,
        profile=profile,
        schedule=schedule,
        duration_s=duration_s,
        users=users,
        load_average=load_average if load_average is not None else machine_load(),
        note=note,
        scenarios=scenarios,
    )


def machine_load() -> float | None:
    """The 1-minute load average: how busy the machine was, for the record."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def write_pool_run(directory: Path, run: PoolRun) -> Path:
    """`<directory>/<testbed>/<date>-<n>.json`, the next free n of that day; written atomically."""
    folder = directory / run.testbed
    day = run.created_at.strftime("%Y%m%d")
    taken = {p.stem for p in folder.glob(f"{day}-*.json")} if folder.is_dir() else set()
    number = next(n for n in range(1, 10_000) if f"{day}-{n:02d}" not in taken)
    path = folder / f"{day}-{number:02d}.json"
    atomic_write(path, json.dumps(run.model_dump(mode="json"), sort_keys=True, separators=(",", ":")) + "\n")
    return path


def read_pool(directory: Path, testbed: str | None = None) -> list[PoolRun]:
    """Every pool run (of one testbed when named), oldest first; a bad file is a `DataError` naming it."""
    pattern = f"{testbed}/*.json" if testbed else "*/*.json"
    runs = []
    for path in sorted(directory.glob(pattern)):
        text = read_text_file(path, "pool run", REPAIR_POOL_RUN)
        runs.append(parse_record(text, PoolRun, where=str(path), what="pool run", hint=REPAIR_POOL_RUN))
    return sorted(runs, key=lambda r: r.created_at)
