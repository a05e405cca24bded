"""`perfci calibrate`: measure the false-alarm rate and the power of the A/B on this machine."""

from __future__ import annotations

import argparse

from perfci.commands.common import Subparsers, add_config_flags, build_config, say


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("calibrate", help="false-alarm rate and power of the A/B on this machine")
    add_config_flags(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--runs", type=int, default=10, help="comparisons per case")
    parser.add_argument("--case", action="append", dest="cases", help="only this case (repeatable)")
    parser.add_argument("--grow-pool", action="store_true", help="add one A/A run to calibration/pool")
    parser.add_argument("--from-pool", action="store_true", help="estimate rates from the A/A pool")
    parser.add_argument("--testbed", help="--from-pool: only this testbed (its id)")
    parser.add_argument("--note", help="--grow-pool: what else the machine was doing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci.analysis.calibrate import estimate_from_pool, grow_pool, run_calibration

    if args.grow_pool:
        return grow_pool(config, say=say, note=args.note or "", progress=not args.no_progress)
    if args.from_pool:
        return estimate_from_pool(config, testbed=args.testbed, say=say)
    return run_calibration(config, runs=args.runs, say=say, case_names=args.cases, progress=not args.no_progress)
