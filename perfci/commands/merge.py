"""`perfci merge`: judge shard runs (one scenario each) together, as one PR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfci.commands.common import Subparsers, finish_run


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("merge", help="judge shard runs (one scenario each) together as one PR")
    parser.add_argument("shards", nargs="*", type=Path, metavar="DIR", help="each shard's run directory")
    parser.add_argument(
        "--expect",
        action="append",
        metavar="SCENARIO",
        help="a scenario the check planned (repeatable): one that no shard brought is a failure, not a pass",
    )
    parser.add_argument("--output", type=Path, required=True, metavar="OUT", help="the merged run directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from perfci.analysis.merge import merge_shards

    comparison = merge_shards(args.shards, args.output, ("perfci", *sys.argv[1:]), args.expect or ())
    return finish_run(args.output, comparison)
