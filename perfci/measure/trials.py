"""One trial of the measure stage, alone or as one arm of a concurrent pair, collected into a `TrialRecord`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from perfci.collect import TrialRecord, trial_record
from perfci.config import Config
from perfci.errors import LoadError
from perfci.measure.load import MeasuredTrial, TrialSpec, common_window, measure_trial
from perfci.measure.progress import trial_progress
from perfci.measure.services import Services
from perfci.model import Arm
from perfci.rundir import LOCUST_LOG, trial_dir
from perfci.targets.base import Target
from perfci.trial_figures import measured_window


def one_trial(
    config: Config,
    scenario: str,
    arm: Arm,
    index: int,
    target: Target,
    run_dir: Path,
    show_progress: bool = True,
    stop: threading.Event | None = None,
) -> MeasuredTrial:
    """One Locust run against `target`, its files in the trial's directory; `stop` ends it early."""
    spec = trial_spec(config, scenario, arm, index, target)
    directory = trial_dir(run_dir, scenario, arm, index)
    with trial_progress(show_progress, config.profile.trials) as on_progress:
        measured = measure_trial(spec, target, directory, on_progress, stop)
    if measured.samples.empty:
        raise LoadError(
            f"{scenario} {arm} trial {index + 1} recorded no requests",
            f"look at {directory / LOCUST_LOG}; the scenario may be failing before its first request",
        )
    return measured


def trial_spec(config: Config, scenario: str, arm: Arm, index: int, target: Target) -> TrialSpec:
    """The Locust run of one trial of `scenario` as the profile describes it (`perfci stress` varies the load)."""
    return TrialSpec(
        scenario=scenario,
        locustfile=config.scenario_file(scenario),
        arm=arm,
        index=index,
        users=config.users_for(scenario),
        spawn_rate=config.profile.spawn_rate,
        warmup_s=config.profile.warmup_s,
        duration_s=config.duration_for(scenario),
        stop_timeout_s=config.profile.stop_timeout_s,
        workers=config.workers,
        target_rps=config.profile.arrival_rate if config.is_open_model(scenario) else None,
        extra_env={"PERFCI_SEED_USERS": str(target.seed_users)},
    )


def own_window(config: Config, measured: MeasuredTrial) -> TrialRecord:
    """The record of a trial judged over its own measured window (not a concurrent pair's common one)."""
    info = measured.info  # this trial's own warm-up and window (a scenario's weight scales it)
    window = measured_window(measured.samples, info.warmup_s, info.duration_s)
    return trial_record(measured.info, window, measured.resources, measured.database)


def concurrent_pair(
    config: Config,
    scenario: str,
    index: int,
    order: Sequence[Arm],
    services: Services,
    run_dir: Path,
    progress: bool,
) -> dict[Arm, TrialRecord]:
    """Both arms' trials of one pair at the same time, one Locust each; `order` says who boots and starts first.

    The order is counterbalanced like an interleaved run's, so a head start of a few milliseconds, or the
    younger of two freshly started services, is never always the same arm. A failure in either trial is
    raised after both have ended, each having kept what it measured.
    """
    targets = services.for_pair(order)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=len(order), thread_name_prefix="perfci-arm") as pool:
        futures = {
            arm: pool.submit(
                one_trial, config, scenario, arm, index, targets[arm], run_dir, progress and arm == order[-1], stop
            )
            for arm in order
        }
        try:
            wait(futures.values())
        except BaseException:
            stop.set()  # Ctrl-C or SIGTERM reached this thread only: end both trials now, not at their end
            raise
    measured = {arm: futures[arm].result() for arm in sorted(order)}
    # Both arms are judged over one wall-clock window (the later start plus warm-up to the earlier end).
    aligned = common_window(
        {arm: (m.info, m.samples, trial_dir(run_dir, scenario, arm, index)) for arm, m in measured.items()}
    )
    return {
        arm: trial_record(info, window, measured[arm].resources, measured[arm].database)
        for arm, (info, window) in aligned.items()
    }
