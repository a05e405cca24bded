"""The `perfci` command: the parser made of perfci/commands, and the guard that turns every error into an exit code.

A subcommand returns its exit code (`verdict.exit_code` for a comparison); whatever it raises ends here as
a message, a hint, error.txt or crash.log in the run directory, and exit 2 or 3.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from perfci import __version__, failures, rundir
from perfci.commands import COMMANDS
from perfci.errors import ExitCode, PerfCIError
from perfci.redact import redact_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfci", description="Performance-regression checks: boot, load, compare, report."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.setup_arguments(subparsers)
    return parser


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _terminated(signum: int, frame: object) -> None:
    # A cancelled CI job or `kill` ends the run the way Ctrl-C does: the services and Locust it started
    # are stopped on the way out, and what was measured stays on disk.
    for stop in _STOP_SIGNALS:
        signal.signal(stop, _already_stopping)
    raise KeyboardInterrupt


def _already_stopping(signum: int, frame: object) -> None:
    # A second signal must not cut the teardown short: it would leave behind the containers and databases of
    # a boot still under way (GitHub sends SIGINT, then SIGTERM 7.5 s later, when a job is cancelled).
    print("perfci: already stopping: removing the services it started (SIGKILL ends it at once)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {stop: signal.signal(stop, _terminated) for stop in _STOP_SIGNALS} if in_main_thread else {}
    try:
        return _dispatch(args)
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; the one place where every failure becomes a message and an exit code.

    Nothing escapes as a traceback with exit 1, which CI would read as "this change regressed".
    """
    rundir.forget_run_dirs()
    try:
        return int(args.handler(args))
    except PerfCIError as error:
        return _report(error)
    except KeyboardInterrupt:
        print("error: interrupted; partial results stay in the run directory", file=sys.stderr)
        return int(ExitCode.INFRASTRUCTURE)
    except OSError as error:
        known = failures.from_os_error(error)
        if known is not None:
            return _report(known)
        return _crashed(error)
    except Exception as error:  # noqa: BLE001 (the guard of last resort: a crash is exit 3 with its log)
        return _crashed(error)


def _report(error: PerfCIError) -> int:
    error.message, error.hint = redact_text(error.message), redact_text(error.hint)
    print(f"error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    marker = failures.write_error_marker(error)
    if marker is not None:
        print(f"perfci: the error is kept in {marker}", file=sys.stderr)
    return int(error.exit_code)


def _crashed(error: BaseException) -> int:
    log = failures.write_crash_log(error)
    print(f"error: perfci failed unexpectedly: {type(error).__name__}: {redact_text(str(error))}", file=sys.stderr)
    print(f"hint: the traceback is in {log}; please report it to perfci's maintainers with that file", file=sys.stderr)
    return int(ExitCode.INFRASTRUCTURE)


if __name__ == "__main__":
    raise SystemExit(main())
