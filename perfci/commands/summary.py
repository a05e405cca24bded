"""`perfci summary`: print a run's summary table; the exit code follows its verdict."""

from __future__ import annotations

import argparse

from perfci import verdict
from perfci.commands.common import Subparsers, add_run_dir_argument, chosen_run_dir
from perfci.rundir import read_comparison


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("summary", help="print a run's summary table")
    add_run_dir_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from perfci.render.terminal import render_terminal

    comparison = read_comparison(chosen_run_dir(args))
    print(render_terminal(comparison))
    return int(verdict.exit_code(comparison))
