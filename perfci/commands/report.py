"""`perfci report`: write report.md and report.html of a run directory again."""

from __future__ import annotations

import argparse

from perfci.commands.common import Subparsers, add_run_dir_argument, chosen_run_dir, write_report_files
from perfci.errors import ExitCode
from perfci.rundir import read_comparison, read_run_record


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("report", help="write report.md and report.html of a run")
    add_run_dir_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory = chosen_run_dir(args)
    read_run_record(directory)  # a damaged run.json is named here, not met halfway through the charts
    for path in write_report_files(directory, read_comparison(directory)):
        print(path)
    return int(ExitCode.OK)
