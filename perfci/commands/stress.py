"""`perfci stress`: raise the load on the candidate step by step until each scenario breaks."""

from __future__ import annotations

import argparse

from perfci.commands.common import Subparsers, add_config_flags, build_config, say, stress_service
from perfci.errors import ExitCode
from perfci.rundir import STRESS_HTML, STRESS_MD, atomic_write, new_run_dir


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("stress", help="find each configured scenario's breaking point")
    add_config_flags(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--model", choices=["closed", "open"], default="closed", help="raise users (closed) or arrival rate (open)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Boot the candidate, stress each configured scenario to its breaking point, write stress.md/.html."""
    config = build_config(args)
    from perfci.render.html import render_stress_html
    from perfci.render.stress import stress_markdown

    run_dir = new_run_dir(config.runs_dir, "stress")
    say(f"perfci: run directory {run_dir}")
    runs = stress_service(config, run_dir, workdir="candidate", model=args.model)
    markdown = stress_markdown(runs)
    atomic_write(run_dir / STRESS_MD, markdown)
    atomic_write(run_dir / STRESS_HTML, render_stress_html(runs))
    print(markdown)
    say(f"perfci: reports: {run_dir / STRESS_MD}, {run_dir / STRESS_HTML}")
    return int(ExitCode.OK)
