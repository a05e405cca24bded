"""The analyse stage of a run: measured trials → a judged `Comparison` (A/B, stored baseline, or none).

Which base a scenario is judged against is chosen here: both arms measured in this run, this testbed's
stored baseline, another testbed's record shown side by side without verdicts, or nothing (SLOs only).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal, Protocol

from perfci import failures, testbed
from perfci.analysis import analyse, baselines, side_by_side
from perfci.config import Config
from perfci.errors import DataError, PerfCIError
from perfci.measure.schedule import planned_looks, runs_concurrently
from perfci.measure.suite import Measured
from perfci.model import ArmInfo, Baseline, Comparison, EndpointStats, Environment, Say, ScenarioComparison


class CompareOptions(Protocol):
    """What the comparison reads of a run's options (`pipeline.RunOptions`)."""

    @property
    def ab_ref(self) -> str | None: ...
    @property
    def base_label(self) -> str | None: ...
    @property
    def candidate_label(self) -> str | None: ...
    @property
    def replaces_baselines(self) -> bool: ...


def compare(
    config: Config,
    options: CompareOptions,
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


def _stored_baseline(
    config: Config, options: CompareOptions, scenario: str, here: Environment, say: Say
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


def _baseline_trials(stored: Baseline) -> Iterator[dict[str, EndpointStats]]:
    count = max((len(b.trials) for b in stored.endpoints.values()), default=0)
    for i in range(count):
        yield {e: b.trials[i] for e, b in stored.endpoints.items() if i < len(b.trials)}
