"""The subcommands of `perfci`, one module each, in the order `perfci --help` lists them.

Each module owns its flags and its work, as asv's commands do: `setup_arguments(subparsers)` adds its
parser (with `handler=run`), and `run(args)` builds what it needs and returns the exit code. Modules import
the heavy parts (statistics, Locust, charts) inside `run`, so that `perfci comment` starts light.
"""

from __future__ import annotations

from perfci.commands import (
    baseline,
    calibrate,
    comment,
    init,
    merge,
    report,
    report_doc,
    run,
    stress,
    summary,
    trends,
)
from perfci.commands.common import Command

COMMANDS: tuple[Command, ...] = (
    init,
    run,
    baseline,
    summary,
    report,
    merge,
    comment,
    stress,
    trends,
    calibrate,
    report_doc,
)
