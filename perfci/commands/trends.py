"""`perfci trends`: change points in main's history of each testbed (baselines/<testbed>/history/)."""

from __future__ import annotations

import argparse

from perfci.commands.common import Subparsers, add_config_flags, build_config
from perfci.errors import DataError, ExitCode


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("trends", help="change points in main's history, per testbed")
    add_config_flags(parser)
    parser.add_argument("--testbed", help="only this testbed (its id, a folder of the baselines directory)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci.analysis.baselines import HISTORY_DIR  # imports the statistics (numpy): not for `perfci comment`
    from perfci.analysis.trends import load_trends
    from perfci.render.trends import trends_text

    # One testbed at a time: a series that mixes machines shows the machines' difference as a change point.
    homes = sorted(p.parent for p in config.baselines_dir.glob(f"*/{HISTORY_DIR}") if p.is_dir())
    if (config.baselines_dir / HISTORY_DIR).is_dir():
        homes.append(config.baselines_dir)  # the flat layout of earlier versions: one more testbed
    if args.testbed:
        homes = [h for h in homes if h.name == args.testbed]
        if not homes:
            raise DataError(
                f"no history for testbed {args.testbed} in {config.baselines_dir}",
                f"pick one of the folders in {config.baselines_dir} (each is a testbed id)",
            )
    if not homes:
        raise DataError(f"no history in {config.baselines_dir}", "run `perfci baseline` on main to start one")
    for home in homes:
        name = home.name if home != config.baselines_dir else f"{home.name} (flat layout)"
        print(f"testbed {name}")
        print(trends_text(load_trends(home / HISTORY_DIR)))
    return int(ExitCode.OK)
