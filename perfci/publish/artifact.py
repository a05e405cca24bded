"""Validate a downloaded report artifact as untrusted data before anything privileged reads it.

The perf-comment workflow runs with `pull-requests: write` on an artifact a PR's own code produced. So
the artifact is data from a stranger: only the expected files, small, no links or path tricks, and a
`comparison.json` that parses into the model. The comment is then rendered again from that comparison by
this perfci; the artifact's own `report.md` is never posted as is.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from perfci.errors import DataError
from perfci.model import SCHEMA_VERSION, Comparison
from perfci.rundir import COMPARISON_FILE, REPORT_HTML, REPORT_MD

# name -> largest size accepted, in bytes. A comparison of a large suite is a few hundred KB.
EXPECTED_FILES: dict[str, int] = {
    COMPARISON_FILE: 5 * 1024 * 1024,
    REPORT_MD: 2 * 1024 * 1024,
    REPORT_HTML: 20 * 1024 * 1024,
}
MAX_TOTAL_BYTES = sum(EXPECTED_FILES.values())
MAX_ZIP_ENTRIES = 16
MAX_COMPRESSION_RATIO = 200  # a zip bomb inflates by thousands; JSON and HTML by tens
HINT = "download the artifact that perf.yml uploaded; anything else is refused on purpose"


@dataclass(frozen=True)
class Artifact:
    comparison: Comparison
    files: tuple[str, ...]  # the expected files that were present


def _check_name(name: str) -> str:
    """A bare expected file name: no folders, no '..', no absolute path, no backslash tricks."""
    path = PurePosixPath(name)
    if "\\" in name or path.is_absolute() or len(path.parts) != 1 or path.name in {"", ".", ".."}:
        raise DataError(f"artifact entry {name[:80]!r} is not a plain file name", HINT)
    if path.name not in EXPECTED_FILES:
        raise DataError(f"artifact holds an unexpected file {path.name[:80]!r}", HINT)
    return path.name


def _check_size(name: str, size: int) -> None:
    if size > EXPECTED_FILES[name]:
        raise DataError(f"artifact file {name} is {size} bytes, over its limit of {EXPECTED_FILES[name]}", HINT)


def _parse(data: bytes) -> Comparison:
    try:
        comparison = Comparison.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise DataError(
            f"artifact {COMPARISON_FILE} does not match the schema: {first['msg']} at {first['loc']}", HINT
        ) from None
    if comparison.schema_version != SCHEMA_VERSION:
        raise DataError(
            f"artifact {COMPARISON_FILE} has schema version {comparison.schema_version}; expected {SCHEMA_VERSION}",
            "run the same perfci version in perf.yml and perf-comment.yml",
        )
    return comparison


def _from_directory(directory: Path) -> Artifact:
    found: dict[str, int] = {}
    for entry in sorted(directory.iterdir()):
        info = entry.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"artifact entry {entry.name[:80]!r} is not a regular file (link or folder)", HINT)
        name = _check_name(entry.name)
        _check_size(name, info.st_size)
        found[name] = info.st_size
    if COMPARISON_FILE not in found:
        raise DataError(f"artifact at {directory} has no {COMPARISON_FILE}", HINT)
    data = (directory / COMPARISON_FILE).read_bytes()
    _check_size(COMPARISON_FILE, len(data))  # the size could change between stat and read
    return Artifact(_parse(data), tuple(sorted(found)))


def _from_zip(path: Path) -> Artifact:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"artifact {path} is not a readable zip: {error}", HINT) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise DataError(f"artifact zip has {len(entries)} entries; at most {MAX_ZIP_ENTRIES} expected", HINT)
        names: list[str] = []
        total = 0
        for info in entries:
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"artifact entry {info.filename[:80]!r} is a folder or link", HINT)
            name = _check_name(info.filename)
            if name in names:
                raise DataError(f"artifact zip holds {name} twice", HINT)
            _check_size(name, info.file_size)
            if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                raise DataError(f"artifact entry {name} inflates {info.file_size // info.compress_size}x", HINT)
            total += info.file_size
            names.append(name)
        if total > MAX_TOTAL_BYTES:
            raise DataError(f"artifact inflates to {total} bytes, over {MAX_TOTAL_BYTES}", HINT)
        if COMPARISON_FILE not in names:
            raise DataError(f"artifact zip has no {COMPARISON_FILE}", HINT)
        # Read at most the limit plus one byte: a lying header cannot make us inflate more than that.
        with archive.open(COMPARISON_FILE) as member:
            data = member.read(EXPECTED_FILES[COMPARISON_FILE] + 1)
        _check_size(COMPARISON_FILE, len(data))
        return Artifact(_parse(data), tuple(sorted(names)))


def load_artifact(path: Path) -> Artifact:
    """Validate an artifact (a directory as download-artifact leaves it, its zip, or a bare comparison.json)
    and parse its comparison. A run directory is not an artifact: read it with `results.read_comparison`."""
    if path.is_symlink():
        raise DataError(f"artifact path {path} is a symbolic link", HINT)
    if path.is_dir():
        return _from_directory(path)
    if path.is_file() and path.name == COMPARISON_FILE:
        data = path.read_bytes()
        _check_size(COMPARISON_FILE, len(data))
        return Artifact(_parse(data), (COMPARISON_FILE,))
    if path.is_file():
        return _from_zip(path)
    raise DataError(f"artifact {path} does not exist", "pass the folder actions/download-artifact wrote")
