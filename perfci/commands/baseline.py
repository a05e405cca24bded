"""`perfci baseline`: measure this commit and refresh this testbed's baselines/ and history lines."""

from __future__ import annotations

import argparse

from perfci.commands.common import Subparsers, add_config_flags, build_config, finish_run, say


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("baseline", help="measure this commit and refresh baselines/")
    add_config_flags(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci import pipeline

    options = pipeline.RunOptions(
        label="baseline", progress=not args.no_progress, command=("perfci", "baseline"), replaces_baselines=True
    )
    outcome = pipeline.run_baseline(config, options, say)
    for path in outcome.written:
        say(f"perfci: baseline written: {path}")
    return finish_run(outcome.run_dir, outcome.comparison)
