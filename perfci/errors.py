"""The PerfCIError hierarchy: every failure a user can act on, with a hint and an exit code."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    REGRESSION = 1  # a regression or an SLO breach
    USAGE = 2  # bad arguments or configuration
    INFRASTRUCTURE = 3  # boot, load generator, publish


class PerfCIError(Exception):
    """A failure with one line of what went wrong and one line of what to do next."""

    exit_code: ExitCode = ExitCode.INFRASTRUCTURE

    def __init__(self, message: str, hint: str = "", *, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log = log  # the log that says more, when one is known: kept with a run that ends in this error

    def __str__(self) -> str:
        return self.message


class ConfigError(PerfCIError):
    """Bad configuration or arguments: names the key and the file."""

    exit_code = ExitCode.USAGE


class DataError(PerfCIError):
    """A baseline, run directory or artifact that is corrupt, missing or of an unknown schema."""

    exit_code = ExitCode.USAGE


class BootError(PerfCIError):
    """The target did not start or never became healthy."""

    exit_code = ExitCode.INFRASTRUCTURE


class LoadError(PerfCIError):
    """The load generator crashed or produced no usable trial."""

    exit_code = ExitCode.INFRASTRUCTURE


class PublishError(PerfCIError):
    """Posting the comment, check run or summary failed (the results on disk are kept)."""

    exit_code = ExitCode.INFRASTRUCTURE


class TargetExitedError(PerfCIError):
    """The service under test died during a trial: the machine or the service failed, not the change."""

    exit_code = ExitCode.INFRASTRUCTURE


class NothingMeasuredError(PerfCIError):
    """A run that measured nothing must not pass the gate."""

    exit_code = ExitCode.INFRASTRUCTURE


class HostError(PerfCIError):
    """The machine failed the run: a full disk, a resource that ran out."""

    exit_code = ExitCode.INFRASTRUCTURE
