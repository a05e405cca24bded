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

from perfci.errors import BootError, ConfigError, HostError, LoadError, PerfCIError
from perfci.model import ArmInfo, Comparison, FailureKind, RunFailure, StatsSettings
from perfci.redact import redact_text
from perfci.rundir import CRASH_LOG, ERROR_FILE, current_run_dir

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_BAD_PATH = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ELOOP,
}  # fmt: skip


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


def no_verdict(failure: RunFailure, candidate: ArmInfo, profile: str, settings: StatsSettings) -> Comparison:
    """A comparison without scenarios that carries the failure: no verdict, exit 3 (a run's or a merge's)."""
    return Comparison(
        created_at=datetime.now(UTC),
        mode="none",
        base=None,
        candidate=candidate,
        profile=profile,
        alpha=settings.alpha,
        power=settings.power,
        scenarios=[],
        failure=failure,
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
