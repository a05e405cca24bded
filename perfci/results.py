"""Run directories: where each invocation's results live, written before anything is published."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from perfci import failures
from perfci.errors import ConfigError, DataError
from perfci.model import SCHEMA_VERSION, Arm, Comparison, RunInfo, TrialInfo

RUN_FILE = "run.json"
COMPARISON_FILE = "comparison.json"
TRIAL_FILE = "trial.json"

M = TypeVar("M", bound=BaseModel)


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
    failures.note_run_dir(path)
    return path


def trial_dir(run_dir: Path, scenario: str, arm: Arm, index: int) -> Path:
    return run_dir / scenario / f"{arm}-{index}"


def _read_model(path: Path, model: type[M], what: str) -> M:
    try:
        text = failures.read_text_file(path, what, "regenerate it; a hand-edited or corrupt file cannot be trusted")
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
