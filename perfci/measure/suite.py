"""The measure stage: boot the arm(s), run every scenario's trials in their schedule, keep everything.

What it hands on is `Measured`: per scenario and arm the trials in order, collected (perfci/collect.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from perfci.collect import TrialRecord
from perfci.config import Config
from perfci.errors import NothingMeasuredError
from perfci.measure.cpu_idle import cpus_awake
from perfci.measure.environment import current_environment
from perfci.measure.schedule import look, pair_orders, planned_looks, runs_concurrently
from perfci.measure.services import Services
from perfci.measure.trials import concurrent_pair, one_trial, own_window
from perfci.model import Arm, Environment, Histogram, Say, TrialInfo
from perfci.rundir import LOCUST_LOG
from perfci.targets.base import Target
from perfci.trial_figures import pooled_histograms


class MeasureOptions(Protocol):
    """What the measure stage reads of a run's options (`pipeline.RunOptions`)."""

    @property
    def order_seed(self) -> int | None: ...
    @property
    def progress(self) -> bool: ...
    @property
    def base_env(self) -> Mapping[str, str]: ...
    @property
    def candidate_env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Measured:
    """Everything measured in one run: per scenario and arm, the trials in order."""

    trials: dict[str, dict[Arm, list[TrialInfo]]]
    histograms: dict[str, dict[Arm, dict[str, Histogram]]]
    targets: dict[Arm, Target]
    environment: Environment
    # A/B only: per scenario, why its sequential run stopped where it did (docs/statistics.md, "Sequential").
    stops: dict[str, str] = field(default_factory=dict)
    # Per scenario and arm, each trial collected (resource samples, database counters), in trial order.
    records: dict[str, dict[Arm, list[TrialRecord]]] = field(default_factory=dict)


def measure(config: Config, options: MeasureOptions, run_dir: Path, base_checkout: Path | None, say: Say) -> Measured:
    """Boot the arm(s), run every scenario's trials (A/B pairs in random order), keep everything."""
    arms: list[Arm] = ["base", "candidate"] if base_checkout else ["candidate"]
    checkouts: dict[Arm, Path] = {"candidate": config.project_root}
    if base_checkout:
        checkouts["base"] = base_checkout
    rng = random.Random(options.order_seed)
    extra_env: dict[Arm, Mapping[str, str]] = {"base": options.base_env, "candidate": options.candidate_env}
    trials: dict[str, dict[Arm, list[TrialInfo]]] = {}
    histograms: dict[str, dict[Arm, dict[str, Histogram]]] = {}
    records: dict[str, dict[Arm, list[TrialRecord]]] = {}
    with (
        cpus_awake(config.hold_cpus_awake, say) as cpu_idle,
        Services(config, run_dir, checkouts, extra_env, say) as services,
    ):
        services.boot_all(arms)
        environment = current_environment(
            services.targets["candidate"].kind,
            {k: v for t in services.targets.values() for k, v in t.image_ids.items()},
            cpu_idle,
        )
        total = len(config.scenarios) * config.profile.trials * len(arms)
        done = 0
        pairs = config.profile.trials
        looks = planned_looks(config) if len(arms) == 2 else []
        stops: dict[str, str] = {}
        for scenario in config.scenarios:
            trials[scenario] = {arm: [] for arm in arms}
            records[scenario] = {arm: [] for arm in arms}
            together = len(arms) == 2 and runs_concurrently(config, scenario)
            for index, order in enumerate(pair_orders(arms, pairs, rng)):
                if together:
                    done += 2
                    say(f"perfci: [{done}/{total}] {scenario} base and candidate together, pair {index + 1}/{pairs}")
                    pair = concurrent_pair(config, scenario, index, order, services, run_dir, options.progress)
                    for arm, record in pair.items():
                        trials[scenario][arm].append(record.info)
                        records[scenario][arm].append(record)
                else:
                    for arm in order:
                        done += 1
                        say(f"perfci: [{done}/{total}] {scenario} {arm} trial {index + 1}/{pairs}")
                        target = services.for_trial(arm)
                        measured = one_trial(config, scenario, arm, index, target, run_dir, options.progress)
                        record = own_window(config, measured)
                        trials[scenario][arm].append(record.info)
                        records[scenario][arm].append(record)
                if index + 1 in looks:
                    reason = look(config, scenario, trials[scenario], looks)
                    if reason is not None:
                        stops[scenario] = reason
                        say(f"perfci: {scenario}: stopping: {reason}")
                        break
            histograms[scenario] = {
                arm: pooled_histograms([r.window for r in records[scenario][arm] if r.window is not None])
                for arm in arms
            }
        targets = dict(services.targets)
    return Measured(trials, histograms, targets, environment, stops, records)


def require_measurements(measured: Measured, run_dir: Path) -> None:
    """A run that measured no request in any scenario has nothing to judge: it must never pass the gate."""
    if not any(t.endpoints for arms in measured.trials.values() for trials in arms.values() for t in trials):
        raise NothingMeasuredError(
            "the run measured no request in its measured windows: nothing to compare",
            f"look at the {LOCUST_LOG} files under {run_dir}; the scenarios may fail before their first request",
        )
