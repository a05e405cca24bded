"""Turning what went wrong outside perfci's own checks into exit codes and words a user can act on.

The CLI's guard is the last line: an OSError the code did not foresee (a disk that fills, a folder that
cannot be written) becomes a `PerfCIError` with the file named, and anything else becomes exit 3 with the
traceback in a log file, never a bare traceback with exit 1, which CI reads as "this change regressed".
"""

from __future__ import annotations

import errno
import os
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from perfci.errors import BootError, ConfigError, DataError, HostError, LoadError, PerfCIError
from perfci.model import FailureKind, RunFailure
from perfci.redact import redact_text

ERROR_FILE = "error.txt"  # in a run directory: why the run ended without a comparison
CRASH_LOG = "crash.log"  # in a run directory: the traceback of an unexpected failure

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_BAD_PATH = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ELOOP,
}  # fmt: skip

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


def from_os_error(error: OSError) -> PerfCIError | None:
    """The `PerfCIError` an OSError stands for, or None when it is not one a user can act on."""
    run_dir = current_run_dir()
    where = error.filename or (f"into {run_dir}" if run_dir else "a file")
    if error.errno in _NO_SPACE or "No space left on device" in str(error):
        return HostError(
            f"no space left on the device while writing {where}",
            "free disk space, or point --runs-dir (runs_dir in [tool.perfci]) at a larger filesystem",
        )
    if error.errno in _BAD_PATH:
        return ConfigError(
            f"cannot use {where}: {error.strerror or error}",
            "check the path and its permissions; --runs-dir and --baselines-dir must be writable folders",
        )
    return None


def run_failure(error: PerfCIError) -> RunFailure:
    """What a comparison without a verdict says about the infrastructure failure that ended its run.

    The message's first line only: a boot error's log excerpt would make a PR comment of the service's
    output, which the log named in the failure keeps anyway. Redacted, since the comparison is published.
    """
    kind: FailureKind = "service_exited"
    if isinstance(error, BootError):
        kind = "boot"
    elif isinstance(error, LoadError):
        kind = "load_generator"
    return RunFailure(
        kind=kind,
        message=redact_text(error.message.split("\n", 1)[0]),
        hint=redact_text(error.hint),
        log=str(error.log) if error.log is not None else None,
    )


def write_error_marker(error: PerfCIError) -> Path | None:
    """`error.txt` in this run's directory: a run that ended without results says why on disk too."""
    run_dir = current_run_dir()
    if run_dir is None or not run_dir.is_dir():
        return None
    path = run_dir / ERROR_FILE
    text = f"error: {error.message}\n" + (f"hint: {error.hint}\n" if error.hint else "")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        return None  # the disk that failed the run may refuse this too; the terminal has the message
    return path


def write_crash_log(error: BaseException) -> Path:
    """The traceback in the run directory when there is one (else a temporary file); returns its path."""
    trace = redact_text("".join(traceback.format_exception(error)))
    text = f"perfci crashed at {datetime.now(UTC).isoformat()}\n\n{trace}"
    run_dir = current_run_dir()
    if run_dir is not None:
        try:
            (run_dir / CRASH_LOG).write_text(text, encoding="utf-8")
        except OSError:
            pass  # a full or read-only disk: fall back to the temporary folder
        else:
            return run_dir / CRASH_LOG
    fd, name = tempfile.mkstemp(prefix="perfci-crash-", suffix=".log")
    os.close(fd)
    Path(name).write_text(text, encoding="utf-8")
    return Path(name)
