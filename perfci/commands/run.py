"""`perfci run`: the PR check, an A/B of the working tree against the merge-base with main."""

from __future__ import annotations

import argparse
import sys

from perfci.commands.common import Subparsers, add_config_flags, add_env_flags, build_config, finish_run, say


def setup_arguments(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="the PR check: an A/B of the working tree against the merge-base with main"
    )
    add_config_flags(parser)
    against = parser.add_mutually_exclusive_group()
    against.add_argument(
        "--ab", metavar="REF", help="same-machine A/B against this git ref (default: the merge-base with main)"
    )
    against.add_argument(
        "--against-baseline",
        action="store_true",
        help="one arm only, compared with this testbed's stored baseline (another testbed's: shown, not judged)",
    )
    add_env_flags(parser)
    parser.add_argument("--order-seed", type=int, help="seed of the random arm order (default: random)")
    parser.add_argument("--label", help="run directory label")
    parser.add_argument("--no-progress", action="store_true", help="plain log lines instead of a live display")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    from perfci import pipeline

    ab_ref, base_label, candidate_label = args.ab, None, None
    if config.target == "url":
        from perfci.targets.url import url_run_arms

        ab_ref, base_label, candidate_label = url_run_arms(
            config.service, wants_ab=bool(args.ab) or not args.against_baseline
        )
    elif not ab_ref and not args.against_baseline:
        # The default is what the PR check runs: an A/B on this machine against the merge-base with main.
        from perfci.gitrefs import default_base

        ab_ref, why = default_base(config.project_root)
        base_label = f"merge-base@{ab_ref[:7]}" if why.startswith("the merge-base") else f"HEAD@{ab_ref[:7]}"
        print(f"perfci: A/B against {why}", file=sys.stderr)
    options = pipeline.RunOptions(
        label=args.label or (f"ab-{args.ab}" if args.ab else "ab" if ab_ref else config.profile_name),
        ab_ref=ab_ref,
        base_label=base_label,
        candidate_label=candidate_label,
        base_env=dict(args.base_env or []),
        candidate_env=dict(args.candidate_env or []),
        order_seed=args.order_seed,
        progress=not args.no_progress,
        command=("perfci", *sys.argv[1:]),
    )
    outcome = pipeline.run(config, options, say)
    code = finish_run(outcome.run_dir, outcome.comparison)
    # Checked once the reports are written: what was measured is kept, but the gate must not pass on it.
    from perfci.analysis.slo import unchecked_slo_error

    unchecked = unchecked_slo_error(config, outcome.comparison)
    if unchecked is not None:
        raise unchecked
    return code
