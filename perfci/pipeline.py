"""The run, stage by stage: boot -> measure (load, collect) -> analyse -> write (docs/architecture.md).

`run` reads top to bottom as those stages; the command (perfci/commands/run.py) then renders, publishes
and turns the verdict into an exit code. Results are on disk before anything is printed or published, so
a failure late in the run loses nothing. Over 400 lines because the measure stage's scheduling (the arms'
services, counterbalanced and concurrent pairs, sequential looks) lives here beside the stage list.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from perfci import failures, gitrefs, testbed
from perfci.analysis import analyse, baselines, side_by_side, stats
from perfci.collect import TrialRecord, trial_record, with_measurements
from perfci.config import Config
from perfci.errors import (
    BootError,
    ConfigError,
    DataError,
    LoadError,
    NothingMeasuredError,
    PerfCIError,
    TargetExitedError,
)
from perfci.measure.cpu_idle import cpus_awake
from perfci.measure.environment import current_environment
from perfci.measure.load import MeasuredTrial, TrialSpec, common_window, measure_trial
from perfci.measure.progress import trial_progress
from perfci.model import (
    Arm,
    ArmInfo,
    Baseline,
    Comparison,
    EndpointStats,
    Environment,
    Histogram,
    RunInfo,
    Say,
    ScenarioComparison,
    TrialInfo,
)
from perfci.redact import redact, redact_text
from perfci.rundir import (
    LOCUST_LOG,
    SEEDED_SQLITE,
    TARGETS_DIR,
    new_run_dir,
    read_trial_info,
    trial_dir,
    trial_dirs,
    write_comparison,
    write_run_info,
)
from perfci.scenario_check import check_scenarios
from perfci.targets.base import Target
from perfci.targets.select import BootedService, BootRequest, boot_service
from perfci.trial_figures import histogram, measured_window


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


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    comparison: Comparison


@dataclass(frozen=True)
class BaselineOutcome:
    run_dir: Path
    comparison: Comparison
    written: list[Path]


# --------------------------------------------------------------------------------------------------------
# The whole run in one screen.
# --------------------------------------------------------------------------------------------------------


def run(config: Config, options: RunOptions, say: Say) -> RunOutcome:
    if not options.ab_ref and not options.replaces_baselines:
        # A corrupt or newer-schema baseline is a usage error: say so before minutes of load, not after.
        # Every testbed's file is checked, since which one applies is known only once the target is up.
        baselines.check_baselines(config.baselines_dir, config.scenarios)
    check_scenarios(config)  # a broken scenario file is exit 2 before any boot, not a failed run
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
            measured = measure(config, options, run_dir, base_dir, say)
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
    write_run_info(
        run_dir,
        RunInfo(
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
        ),
    )
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
    commit = gitrefs.head_commit(config.project_root) or "unknown"
    measured_env = outcome.comparison.candidate.environment
    assert measured_env is not None
    written: list[Path] = []
    home = baselines.testbed_home(config.baselines_dir, measured_env)
    for scenario in config.scenarios:
        infos = [read_trial_info(d) for d in trial_dirs(outcome.run_dir, scenario, "candidate")]
        histograms = {
            e.endpoint: e.candidate_histogram
            for s in outcome.comparison.scenarios
            if s.scenario == scenario
            for e in s.endpoints
            if e.candidate_histogram is not None
        }
        stored = baselines.build_baseline(
            scenario,
            profile=config.profile_name,
            trials=[t.endpoints for t in infos],
            histograms=histograms,
            environment=measured_env,
            git_commit=commit,
        )
        written.append(baselines.write_baseline(home, stored))
        written.append(baselines.append_history(home, baselines.history_line(stored)))
        for aside in baselines.set_aside_unusable(config.baselines_dir, scenario):
            say(f"perfci: an unusable baseline was set aside as {aside}")
    return BaselineOutcome(outcome.run_dir, outcome.comparison, written)


def measure(config: Config, options: RunOptions, run_dir: Path, base_checkout: Path | None, say: Say) -> Measured:
    """Boot the arm(s), run every scenario's trials (A/B pairs in random order), keep everything."""
    arms: list[Arm] = ["base", "candidate"] if base_checkout else ["candidate"]
    checkouts: dict[Arm, Path] = {"candidate": config.project_root}
    if base_checkout:
        checkouts["base"] = base_checkout
    rng = random.Random(options.order_seed)
    trials: dict[str, dict[Arm, list[TrialInfo]]] = {}
    histograms: dict[str, dict[Arm, dict[str, Histogram]]] = {}
    records: dict[str, dict[Arm, list[TrialRecord]]] = {}
    with (
        cpus_awake(config.hold_cpus_awake, say) as cpu_idle,
        Services(config, options, run_dir, checkouts, say) as services,
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
                    pair = _concurrent_pair(config, options, scenario, index, order, services, run_dir)
                    for arm, record in pair.items():
                        trials[scenario][arm].append(record.info)
                        records[scenario][arm].append(record)
                else:
                    for arm in order:
                        done += 1
                        say(f"perfci: [{done}/{total}] {scenario} {arm} trial {index + 1}/{pairs}")
                        target = services.for_trial(arm)
                        record = _own_window(config, _one_trial(config, options, scenario, arm, index, target, run_dir))
                        trials[scenario][arm].append(record.info)
                        records[scenario][arm].append(record)
                if index + 1 in looks:
                    reason = look(config, scenario, trials[scenario], looks)
                    if reason is not None:
                        stops[scenario] = reason
                        say(f"perfci: {scenario}: stopping: {reason}")
                        break
            histograms[scenario] = {
                arm: _histograms([r.window for r in records[scenario][arm] if r.window is not None]) for arm in arms
            }
        targets = dict(services.targets)
    return Measured(trials, histograms, targets, environment, stops, records)


def planned_looks(config: Config) -> list[int]:
    """The sequential plan of an A/B run: look at 8, 12, 16, ... pairs up to the profile's trials."""
    return stats.planned_looks(config.profile.trials)


def look(config: Config, scenario: str, trials: Mapping[Arm, Sequence[TrialInfo]], looks: Sequence[int]) -> str | None:
    """At a planned look: why the scenario may stop now, or None to go on (at the last look, why it ends)."""
    pairs = len(trials["candidate"])
    evidence = analyse.gather_scenario(
        scenario,
        [t.endpoints for t in trials["base"]],
        [t.endpoints for t in trials["candidate"]],
        mode="ab",
        settings=config.statistics,
        slos=(),
        looks=looks,
    )
    reason = analyse.decide_look(evidence, config.statistics, other_scenarios=len(config.scenarios) - 1)
    if reason is None and pairs >= looks[-1]:
        return f"the budget of {pairs} pairs was reached with some tests undecided"
    return reason


def pair_orders(arms: Sequence[Arm], pairs: int, rng: random.Random) -> list[list[Arm]]:
    """The arm order of each pair, counterbalanced in blocks of two pairs (AB BA or BA AB, chosen at random).

    Within a block each arm runs first once, so an effect of going first or second (a service still
    settling, the machine warming) cancels instead of landing on one arm, as it can when every pair is
    shuffled on its own (with three pairs, one order in four has the same arm first every time); the
    random choice per block keeps drift over the job from lining up with the arms.
    """
    orders: list[list[Arm]] = []
    for index in range(pairs):
        if index % 2 == 0:
            order = list(arms)
            rng.shuffle(order)
        else:
            order = orders[-1][::-1]
        orders.append(order)
    return orders


def runs_concurrently(config: Config, scenario: str) -> bool:
    """Whether an A/B run measures both arms of this scenario at once.

    Open-model scenarios interleave whatever the schedule: two arms offered their arrival rate at the same
    time would load the machine twice over and could miss the rate for a reason neither arm has.
    """
    return config.profile.ab_schedule == "concurrent" and not config.is_open_model(scenario)


def _concurrent_pair(
    config: Config,
    options: RunOptions,
    scenario: str,
    index: int,
    order: Sequence[Arm],
    services: Services,
    run_dir: Path,
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
                _one_trial, config, options, scenario, arm, index, targets[arm], run_dir, arm == order[-1], stop
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


class Services:
    """The running service of each arm; with `profile.fresh_service`, a fresh one for every trial.

    Each arm's service is booted once and kept for the run; a fresh one is the target's own restart (for
    compose, a new app process on a new clone of the seeded database, PostgreSQL staying up). The arms of an
    A/B boot and restart in parallel: a pair waits for the slower arm, not for both in turn.
    """

    def __init__(
        self, config: Config, options: RunOptions, run_dir: Path, checkouts: Mapping[Arm, Path], say: Say
    ) -> None:
        self.config, self.run_dir, self.checkouts, self.say = config, run_dir, checkouts, say
        self.extra_env: dict[Arm, Mapping[str, str]] = {"base": options.base_env, "candidate": options.candidate_env}
        self.targets: dict[Arm, Target] = {}
        self._stack = ExitStack()
        self._booted: dict[Arm, BootedService] = {}
        self._restarts = config.profile.fresh_service
        self._used: set[Arm] = set()  # arms whose running service has already served a trial

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def boot(self, arm: Arm) -> Target:
        self.say(f"perfci: booting the {arm} service ({self.config.target})")
        request = BootRequest(
            arm=arm,
            checkout=self.checkouts[arm],
            extra_env=dict(self.extra_env[arm]),
            workdir=self.run_dir / TARGETS_DIR / arm,
            sqlite_template=self.run_dir / TARGETS_DIR / arm / SEEDED_SQLITE,
        )
        booted = self._stack.enter_context(boot_service(self.config, request))
        self._booted[arm] = booted
        self.targets[arm] = booted.target
        self.say(f"perfci: {arm} service ready at {booted.target.base_url}: {booted.target.description}")
        if self._restarts and booted.target.kind == "url":
            self.say("perfci: a url target cannot be restarted: every trial uses the same service")
        return booted.target

    def boot_all(self, arms: Sequence[Arm]) -> None:
        """Boot the arms at once; a failure is raised after every boot has ended (and is closed on exit)."""
        _in_parallel(self.boot, arms)

    def for_trial(self, arm: Arm) -> Target:
        """The arm's service for its next trial: restarted from its seeded state when the profile asks and
        the running one has served a trial already."""
        if self._restarts and arm in self._used and self.targets[arm].kind != "url":
            self.targets[arm] = self._booted[arm].restart()
        self._used.add(arm)
        return self.targets[arm]

    def for_pair(self, order: Sequence[Arm]) -> dict[Arm, Target]:
        """Both arms' services for a concurrent pair, restarted in parallel (started in `order`)."""
        return dict(zip(order, _in_parallel(self.for_trial, order), strict=True))


def _in_parallel(work: Callable[[Arm], Target], arms: Sequence[Arm]) -> list[Target]:
    """`work` for each arm in threads, submitted in order; the first failure raised once all have ended."""
    if len(arms) < 2:
        return [work(arm) for arm in arms]
    with ThreadPoolExecutor(max_workers=len(arms), thread_name_prefix="perfci-boot") as pool:
        futures = [pool.submit(work, arm) for arm in arms]
        wait(futures)
    return [future.result() for future in futures]


def compare(
    config: Config,
    options: RunOptions,
    measured: Measured,
    candidate_commit: str | None,
    base_commit: str | None,
    say: Say,
) -> Comparison:
    """A/B when both arms ran here; else against the stored baseline; else absolute figures and SLOs."""
    evidence: list[analyse.ScenarioEvidence] = []
    unjudged: dict[str, ScenarioComparison] = {}  # another testbed's figures beside this run's: no verdicts
    base_info: ArmInfo | None = None
    not_comparable: str | None = None
    modes: set[str] = set()
    for scenario, arms in measured.trials.items():
        candidate = [t.endpoints for t in arms["candidate"]]
        flags = [f"{t.arm} trial {t.index + 1}: {flag}" for trials in arms.values() for t in trials for flag in t.flags]
        hist = measured.histograms[scenario]
        if options.ab_ref:
            result = analyse.gather_scenario(
                scenario,
                [t.endpoints for t in arms["base"]],
                candidate,
                mode="ab",
                settings=config.statistics,
                slos=config.slos,
                base_histograms=hist["base"],
                candidate_histograms=hist["candidate"],
                flags=flags,
                schedule="concurrent" if runs_concurrently(config, scenario) else "interleaved",
                looks=planned_looks(config),
                stop_reason=measured.stops.get(scenario, ""),
            )
            base_info = ArmInfo(
                label=options.base_label or f"{options.ab_ref}@{(base_commit or '')[:7]}",
                ref=options.ab_ref,
                commit=base_commit,
                environment=measured.environment,
            )
        else:
            stored, elsewhere = _stored_baseline(config, options, scenario, measured.environment, say)
            if elsewhere is not None:
                # Only another testbed's record: figures side by side, never verdicts.
                not_comparable = testbed.not_comparable_reason(elsewhere.environment, measured.environment)
                base_info = side_by_side.stored_arm(elsewhere)
                shown = side_by_side.not_comparable_scenario(
                    scenario,
                    elsewhere,
                    candidate,
                    environment=measured.environment,
                    settings=config.statistics,
                    slos=config.slos,
                    candidate_histograms=hist["candidate"],
                    flags=flags,
                )
                say(f"perfci: {shown.notes[0]}")
                modes.add(shown.mode)
                unjudged[scenario] = shown
                continue
            if stored is None:
                say(f"perfci: {baselines.missing_note(scenario)}")
            else:
                base_info = ArmInfo(
                    label=f"main@{stored.git_commit[:7]}",
                    commit=stored.git_commit,
                    created_at=stored.created_at,
                    environment=stored.environment,
                )
            result = analyse.gather_scenario(
                scenario,
                list(_baseline_trials(stored)) if stored else None,
                candidate,
                mode="baseline" if stored else "none",
                settings=config.statistics,
                slos=config.slos,
                base_histograms={e: b.histogram for e, b in stored.endpoints.items()} if stored else None,
                candidate_histograms=hist["candidate"],
                environment_differences=(
                    testbed.environment_differences(stored.environment, measured.environment) if stored else ()
                ),
                flags=flags,
            )
        modes.add(result.arms.mode)
        evidence.append(result)
    # One family over every scenario's tests: the PR's false-fail budget is alpha, not alpha per scenario.
    judgement = analyse.judge(evidence, config.statistics)
    judged = {s.scenario: s for s in judgement.scenarios}
    scenarios = [unjudged.get(name) or judged[name] for name in measured.trials]
    # A run mixes modes only when some scenarios lack a baseline; the comparison names the strongest one.
    mode: Literal["ab", "baseline", "none"] = "ab" if "ab" in modes else "baseline" if "baseline" in modes else "none"
    return Comparison(
        created_at=datetime.now(UTC),
        mode=mode,
        base=base_info,
        candidate=candidate_arm(candidate_commit, measured.environment, options.candidate_label),
        profile=config.profile_name,
        alpha=config.statistics.alpha,
        power=config.statistics.power,
        scenarios=scenarios,
        not_comparable=not_comparable if mode == "none" else None,
        judged_tests=judgement.judged_tests,
    )


# --------------------------------------------------------------------------------------------------------
# Helpers of the stages above.
# --------------------------------------------------------------------------------------------------------


def _one_trial(
    config: Config,
    options: RunOptions,
    scenario: str,
    arm: Arm,
    index: int,
    target: Target,
    run_dir: Path,
    show_progress: bool = True,
    stop: threading.Event | None = None,
) -> MeasuredTrial:
    spec = TrialSpec(
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
    directory = trial_dir(run_dir, scenario, arm, index)
    with trial_progress(options.progress and show_progress, config.profile.trials) as on_progress:
        measured = measure_trial(spec, target, directory, on_progress, stop)
    if measured.samples.empty:
        raise LoadError(
            f"{scenario} {arm} trial {index + 1} recorded no requests",
            f"look at {directory / LOCUST_LOG}; the scenario may be failing before its first request",
        )
    return measured


def _own_window(config: Config, measured: MeasuredTrial) -> TrialRecord:
    """The record of a trial judged over its own measured window (not a concurrent pair's common one)."""
    info = measured.info  # this trial's own warm-up and window (a scenario's weight scales it)
    window = measured_window(measured.samples, info.warmup_s, info.duration_s)
    return trial_record(measured.info, window, measured.resources, measured.database)


def candidate_arm(commit: str | None, environment: Environment | None = None, label: str | None = None) -> ArmInfo:
    """The arm a run measures: the working tree at its commit (a url run: the address measured)."""
    label = label or f"working tree@{(commit or 'unknown')[:7]}"
    return ArmInfo(label=label, commit=commit, environment=environment)


def failed_comparison(
    config: Config, error: PerfCIError, candidate_commit: str | None, candidate_label: str | None = None
) -> Comparison:
    """A comparison without scenarios that carries the failure: no verdict, exit 3."""
    failure = failures.run_failure(error)
    arm = candidate_arm(candidate_commit, label=candidate_label)
    return failures.no_verdict(failure, arm, config.profile_name, config.statistics)


def require_measurements(measured: Measured, run_dir: Path) -> None:
    """A run that measured no request in any scenario has nothing to judge: it must never pass the gate."""
    if not any(t.endpoints for arms in measured.trials.values() for trials in arms.values() for t in trials):
        raise NothingMeasuredError(
            "the run measured no request in its measured windows: nothing to compare",
            f"look at the {LOCUST_LOG} files under {run_dir}; the scenarios may fail before their first request",
        )


def with_unmatched_slo_notes(config: Config, comparison: Comparison) -> Comparison:
    """A note in every scenario for an SLO (without a scenario filter) that matched no endpoint of the run.

    Such an SLO was never checked: a typo in its endpoint would otherwise disable it in silence. The note
    goes into the reports; the CLI then exits 2 when the run covered the whole configured suite
    (`unchecked_slo_error`), since a run of some scenarios (`--scenario auth`) rightly misses the others.
    """
    unmatched = unmatched_slo_endpoints(config, comparison)
    if not unmatched:
        return comparison
    ran = ", ".join(s.scenario for s in comparison.scenarios)
    notes = [
        f"SLO for {endpoint} was not checked: no scenario of this run ({ran}) made a request to it; "
        f"check its spelling in {config.config_file}"
        for endpoint in unmatched
    ]
    scenarios = [s.model_copy(update={"notes": [*s.notes, *notes]}) for s in comparison.scenarios]
    return comparison.model_copy(update={"scenarios": scenarios})


def unmatched_slo_endpoints(config: Config, comparison: Comparison) -> list[str]:
    """The endpoints of SLOs without a scenario filter that no scenario of the run made a request to."""
    measured = {e.endpoint for s in comparison.scenarios for e in s.endpoints}
    return [slo.endpoint for slo in config.slos if slo.scenario is None and slo.endpoint not in measured]


def unchecked_slo_error(config: Config, comparison: Comparison) -> ConfigError | None:
    """An error for SLOs that matched nothing in a run of the whole configured suite: a typo, never checked.

    A run narrowed to some scenarios (`--scenario auth`) only gets the notes: it rightly misses the rest.
    """
    unmatched = unmatched_slo_endpoints(config, comparison)
    if not unmatched or config.scenarios_narrowed or comparison.failure is not None:
        return None
    return ConfigError(
        f"SLO endpoint(s) {unmatched} in {config.config_file} matched no endpoint of any scenario, so they were "
        "never checked",
        "fix the endpoint in [[tool.perfci.slo]] (labels look like 'GET /users/{id}'; the run's report lists them), "
        "or give the SLO a scenario",
    )


def _stored_baseline(
    config: Config, options: RunOptions, scenario: str, here: Environment, say: Say
) -> tuple[Baseline | None, Baseline | None]:
    """(this testbed's stored baseline, another testbed's), as `baselines.choose_baseline` picks them; when
    `perfci baseline` replaces a corrupt file, neither, with a note."""
    try:
        return baselines.choose_baseline(config.baselines_dir, scenario, here)
    except DataError as error:
        if not options.replaces_baselines:
            raise
        say(f"perfci: replacing an unusable baseline: {error.message}")
        return None, None


def _histograms(windows: Sequence[pd.DataFrame]) -> dict[str, Histogram]:
    pooled = pd.concat(windows, ignore_index=True)
    return {str(e): histogram(g["latency_ms"]) for e, g in pooled.groupby("endpoint", observed=True)}


def _baseline_trials(stored: Baseline) -> Iterator[dict[str, EndpointStats]]:
    count = max((len(b.trials) for b in stored.endpoints.values()), default=0)
    for i in range(count):
        yield {e: b.trials[i] for e, b in stored.endpoints.items() if i < len(b.trials)}
