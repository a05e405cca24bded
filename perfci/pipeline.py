"""The run, stage by stage: config check -> boot + measure -> collect -> analyse -> write.

`run` reads top to bottom as those stages, each a call into the package that holds it
(docs/architecture.md); the command (perfci/commands/run.py) then renders, publishes and turns the
verdict into an exit code. Results are on disk before anything is printed or published, so a failure late
in the run loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from perfci import gitrefs
from perfci.analysis import baselines
from perfci.analysis.compare_run import compare, failed_comparison
from perfci.analysis.slo import with_unmatched_slo_notes
from perfci.collect import with_measurements
from perfci.config import Config
from perfci.errors import BootError, LoadError, TargetExitedError
from perfci.measure.suite import Measured, measure, require_measurements
from perfci.model import Comparison, RunInfo, Say
from perfci.redact import redact, redact_text
from perfci.rundir import new_run_dir, write_comparison, write_run_info
from perfci.scenario_check import check_scenarios


@dataclass(frozen=True)
class RunOptions:
    """What this invocation does beyond the configuration."""

    label: str = "run"
    ab_ref: str | None = None  # same-machine A/B against this git ref
    base_label: str | None = None  # how reports name the base arm (default: "<ab_ref>@<commit>")
    candidate_label: str | None = None  # how reports name the candidate (default: "working tree@<commit>")
    base_env: Mapping[str, str] = field(default_factory=dict)  # service env for the base arm only
    candidate_env: Mapping[str, str] = field(default_factory=dict)
    order_seed: int | None = None  # seeds the random arm order of each block of two pairs
    progress: bool = True
    command: tuple[str, ...] = ()
    # `perfci baseline`: the stored baselines are about to be replaced, so a corrupt one is no reason to
    # stop; it is the way to repair it.
    replaces_baselines: bool = False


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    comparison: Comparison


@dataclass(frozen=True)
class BaselineOutcome:
    run_dir: Path
    comparison: Comparison
    written: list[Path]


def run(config: Config, options: RunOptions, say: Say) -> RunOutcome:
    check_before_boot(config, options)
    run_dir = new_run_dir(config.runs_dir, options.label)
    say(f"perfci: run directory {run_dir}")
    # A url target measures whatever runs at its addresses: no commit of this checkout names that code.
    from_git = config.target != "url"
    candidate_commit = gitrefs.head_commit(config.project_root) if from_git else None
    base_commit = gitrefs.resolve(config.project_root, options.ab_ref) if options.ab_ref and from_git else None
    with ExitStack() as stack:
        if options.ab_ref and from_git:
            base_dir: Path | None = stack.enter_context(gitrefs.worktree(config.project_root, options.ab_ref))
        else:
            base_dir = config.project_root if options.ab_ref else None
        try:
            measured = measure(config, options, run_dir, base_dir, say)  # boot, trials, collected per trial
        except (TargetExitedError, LoadError, BootError) as error:
            # The service died, the load generator died or the service never came up: nothing measured from
            # then on says anything about the change. The run ends with a comparison that says so, for the
            # terminal, the comment and the report; the trials measured until then stay on disk.
            failed = failed_comparison(config, error, candidate_commit, options.candidate_label)
            if "\n" in error.message:  # a boot error's log excerpt: for the terminal, not the PR comment
                say(redact_text(error.message.split("\n", 1)[1]))
            write_comparison(run_dir, failed)
            return RunOutcome(run_dir, failed)
    require_measurements(measured, run_dir)
    write_run_info(run_dir, run_info(config, options, measured, candidate_commit, base_commit))
    comparison = compare(config, options, measured, candidate_commit, base_commit, say)
    comparison = with_unmatched_slo_notes(config, comparison)
    # Resource peaks and PostgreSQL counters, per scenario and arm, from the trials collected.
    comparison = with_measurements(comparison, measured.records)
    write_comparison(run_dir, comparison)
    return RunOutcome(run_dir, comparison)


def run_baseline(config: Config, options: RunOptions, say: Say) -> BaselineOutcome:
    """Measure this commit and write this testbed's baselines/<testbed id>/<scenario>.json and history lines.

    The comparison is made against the previous baseline before it is replaced, so the log shows what
    the refresh changed.
    """
    outcome = run(config, options, say)
    if outcome.comparison.failure is not None:
        return BaselineOutcome(outcome.run_dir, outcome.comparison, [])  # nothing trustworthy to store
    written = baselines.store_run(
        config.baselines_dir,
        outcome.run_dir,
        outcome.comparison,
        config.scenarios,
        profile=config.profile_name,
        git_commit=gitrefs.head_commit(config.project_root) or "unknown",
        say=say,
    )
    return BaselineOutcome(outcome.run_dir, outcome.comparison, written)


def check_before_boot(config: Config, options: RunOptions) -> None:
    """What makes a run a usage error (exit 2), found before minutes of load rather than after."""
    if not options.ab_ref and not options.replaces_baselines:
        # A corrupt or newer-schema baseline is a usage error. Every testbed's file is checked, since which
        # one applies is known only once the target is up.
        baselines.check_baselines(config.baselines_dir, config.scenarios)
    check_scenarios(config)  # a broken scenario file is exit 2 before any boot, not a failed run


def run_info(
    config: Config, options: RunOptions, measured: Measured, candidate_commit: str | None, base_commit: str | None
) -> RunInfo:
    """The run's record for run.json: command, configuration (redacted), environment, commits."""
    return RunInfo(
        label=options.label,
        created_at=datetime.now(UTC),
        command=redact(list(options.command)),
        config=redact(config.model_dump(mode="json")),
        environment=measured.environment,
        candidate_commit=candidate_commit,
        candidate_dirty=gitrefs.is_dirty(config.project_root),
        base_ref=options.ab_ref,
        base_commit=base_commit,
        target_description=measured.targets["candidate"].description,
    )
