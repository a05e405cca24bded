"""The run directory: every file name in it, and every read and write of its models and Parquet files.

A run directory is the contract between the stages (docs/architecture.md): the load stage writes each
trial's files, the collect and analyse stages read them, the reports are written beside them, and
`perfci comment` publishes what is there. Nothing else in perfci spells a file name of a run directory.
pandas is imported inside the Parquet readers: `perfci comment` reads comparison.json with this module
and must not pay for the statistics stack.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from perfci.errors import ConfigError, DataError
from perfci.model import SCHEMA_VERSION, Arm, Comparison, DatabaseCounters, RunInfo, TrialInfo

if TYPE_CHECKING:
    import pandas as pd

# <run>/: the run as a whole.
RUN_FILE = "run.json"  # what ran: command, configuration, environment, commits
COMPARISON_FILE = "comparison.json"  # the verdicts: what reports and the PR comment are made from
ERROR_FILE = "error.txt"  # why the run ended without a comparison
CRASH_LOG = "crash.log"  # the traceback of an unexpected failure
REPORT_MD = "report.md"  # the PR comment's text
REPORT_HTML = "report.html"  # self-contained, with charts
STRESS_MD = "stress.md"
STRESS_HTML = "stress.html"
CALIBRATION_FILE = "calibration.json"
TARGETS_DIR = "targets"  # <run>/targets/<arm>/: each arm's service files (logs, seeded database)
SEEDED_SQLITE = "seeded.sqlite3"
# <run>/<scenario>/<arm>-<n>/: one trial.
TRIAL_FILE = "trial.json"  # TrialInfo: the trial's figures over its measured window
SAMPLES_FILE = "samples.parquet"  # every request (model.SAMPLE_COLUMNS)
RESOURCES_FILE = "resources.parquet"  # t_s, source, cpu_percent, rss_mb
DATABASE_FILE = "database.json"  # PostgreSQL counters over the trial, when the target has PostgreSQL
LOCUST_LOG = "locust.log"
LOCUST_STATS = "locust-stats"  # --json-file writes locust-stats.json: Locust's own counts, for cross-checks
PARTS_DIR = "parts"  # the Locust plugin's sample parts, merged into samples.parquet
# <run>/<scenario>/: a stress result.
STRESS_FILE = "stress.json"

M = TypeVar("M", bound=BaseModel)

# The run directory this process created, if any: where an error marker and a crash log belong.
_run_dirs: list[Path] = []


def note_run_dir(path: Path) -> None:
    _run_dirs.append(path)


def forget_run_dirs() -> None:
    """A new command starts: an earlier one's run directory (tests call `main` many times) is not its own."""
    _run_dirs.clear()


def current_run_dir() -> Path | None:
    return _run_dirs[-1] if _run_dirs else None


def read_text_file(path: Path, what: str, hint: str) -> str:
    """The UTF-8 text of `path`; FileNotFoundError passes through (callers know what a missing file means).

    A directory, an unreadable file or bytes that are not UTF-8 are a `DataError` (exit 2) naming the file.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}): not a {what}", hint) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a {what}", hint) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", hint) from None


def atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    # mkstemp makes the file private (0600); results and baselines are ordinary shared files.
    Path(temporary).chmod(0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_model(path: Path, model: BaseModel) -> None:
    atomic_write(path, model.model_dump_json(indent=2) + "\n")


def new_run_dir(runs_dir: Path, label: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "run"
    path = runs_dir / f"{stamp}-{safe}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = runs_dir / f"{stamp}-{safe}-{suffix}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run directory {path}: {exc.strerror or exc}",
            "point --runs-dir (runs_dir in [tool.perfci]) at a folder you can write",
        ) from None
    note_run_dir(path)
    return path


def trial_dir(run_dir: Path, scenario: str, arm: Arm, index: int) -> Path:
    return run_dir / scenario / f"{arm}-{index}"


def _read_model(path: Path, model: type[M], what: str) -> M:
    try:
        text = read_text_file(path, what, "regenerate it; a hand-edited or corrupt file cannot be trusted")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist", f"is this a perfci {what}?") from None
    try:
        parsed = model.model_validate_json(text)
    except ValidationError as exc:
        version = _schema_version(text)
        if version is not None and version > SCHEMA_VERSION:
            raise DataError(
                f"{path} has schema version {version}; this perfci reads up to {SCHEMA_VERSION}",
                "upgrade perfci to read it",
            ) from None
        raise DataError(
            f"{path} is not a valid {what}: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            "regenerate it; a hand-edited or truncated file cannot be trusted",
        ) from None
    version = getattr(parsed, "schema_version", None)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        newer = f"{path} has schema version {version}; this perfci reads up to {SCHEMA_VERSION}"
        raise DataError(newer, "upgrade perfci to read it")
    return parsed


def _schema_version(text: str) -> int | None:
    match = re.search(r'"schema_version"\s*:\s*(\d+)', text)
    return int(match.group(1)) if match else None


def read_run_info(run_dir: Path) -> RunInfo:
    return _read_model(run_dir / RUN_FILE, RunInfo, "run directory")


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """run.json as a plain JSON object, {} when there is none: for readers that take what they find.

    Reports read a setting or two from it (the service's environment, the baselines folder), and a run
    directory of an older perfci or a partial one must still get its report.
    """
    path = run_dir / RUN_FILE
    damaged = "the run directory is damaged; re-run `perfci run` for a new one"
    try:
        record = json.loads(read_text_file(path, "run record", damaged))
    except FileNotFoundError:
        return {}
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise DataError(f"{path} is not a valid run record (truncated or hand-edited)", damaged)
    return record


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    write_model(run_dir / RUN_FILE, info)


def write_comparison(run_dir: Path, comparison: Comparison) -> None:
    write_model(run_dir / COMPARISON_FILE, comparison)


def write_trial_info(directory: Path, info: TrialInfo) -> None:
    write_model(directory / TRIAL_FILE, info)


def read_comparison(path: Path) -> Comparison:
    """`path` is a run directory or a comparison.json file."""
    file = path / COMPARISON_FILE if path.is_dir() else path
    return _read_model(file, Comparison, "comparison")


def read_trial_info(directory: Path) -> TrialInfo:
    return _read_model(directory / TRIAL_FILE, TrialInfo, "trial")


def trial_dirs(run_dir: Path, scenario: str, arm: Arm) -> list[Path]:
    """The scenario's trial folders of one arm, in trial order."""
    folder = run_dir / scenario
    found = [p for p in folder.glob(f"{arm}-*") if p.is_dir() and (p / TRIAL_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))


def latest_run(runs_dir: Path) -> Path:
    runs = sorted(p for p in runs_dir.glob("*") if (p / RUN_FILE).is_file())
    if not runs:
        raise DataError(f"no perfci runs in {runs_dir}", "run `perfci run` first")
    return runs[-1]


def stress_file(run_dir: Path, scenario: str) -> Path:
    return run_dir / scenario / STRESS_FILE


def write_samples(directory: Path, samples: pd.DataFrame) -> None:
    samples.to_parquet(directory / SAMPLES_FILE, index=False)


def read_samples(directory: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A trial's raw samples (only `columns` when given); None when the trial wrote none."""
    import pandas as pd

    path = directory / SAMPLES_FILE
    return pd.read_parquet(path, columns=columns) if path.is_file() else None


def write_resources(directory: Path, resources: pd.DataFrame) -> None:
    resources.to_parquet(directory / RESOURCES_FILE, index=False)


def read_resources(directory: Path) -> pd.DataFrame | None:
    """A trial's resource samples; None when the trial wrote none."""
    import pandas as pd

    path = directory / RESOURCES_FILE
    return pd.read_parquet(path) if path.is_file() else None


def write_database_counters(directory: Path, counters: DatabaseCounters) -> None:
    write_model(directory / DATABASE_FILE, counters)


def read_database_counters(directory: Path) -> DatabaseCounters | None:
    """A trial's PostgreSQL counters; None when the target had no PostgreSQL to count."""
    path = directory / DATABASE_FILE
    if not path.is_file():
        return None
    try:
        return DatabaseCounters.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise DataError(
            f"{path} is not valid database counters: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            "regenerate the run; a hand-edited or truncated file cannot be trusted",
        ) from None
