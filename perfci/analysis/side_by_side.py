"""Another testbed's stored baseline beside this run: both sets of figures, SLOs, and never a verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from perfci import testbed
from perfci.analysis import analyse
from perfci.model import (
    ArmInfo,
    Baseline,
    EndpointStats,
    Environment,
    Histogram,
    ScenarioComparison,
    SloSpec,
    StatsSettings,
)


def stored_arm(stored: Baseline) -> ArmInfo:
    """How reports name a stored baseline: main's commit, when and where it was measured."""
    return ArmInfo(
        label=f"main@{stored.git_commit[:7]}",
        commit=stored.git_commit,
        created_at=stored.created_at,
        environment=stored.environment,
    )


def not_comparable_scenario(
    scenario: str,
    stored: Baseline,
    candidate: Sequence[Mapping[str, EndpointStats]],
    *,
    environment: Environment,
    settings: StatsSettings,
    slos: Sequence[SloSpec],
    candidate_histograms: Mapping[str, Histogram],
    flags: Sequence[str] = (),
) -> ScenarioComparison:
    """This run's absolute figures and SLOs, with the stored baseline's figures beside them, no verdicts.

    The stored trials were measured on another machine (or kernel, Python, target kind, idle policy): the
    difference between the two is mostly the machine, so judging it would blame or credit the code for it.
    """
    reason = testbed.not_comparable_reason(stored.environment, environment)
    note = (
        f"no baseline for {scenario} on this testbed ({testbed.testbed_id(environment)}); another "
        f"testbed's is not comparable ({reason}): shown beside this run, not judged. To compare on this machine "
        f"run `{testbed.SAME_MACHINE_COMMAND}`"
    )
    result = analyse.compare_scenario(
        scenario,
        None,
        [dict(trial) for trial in candidate],
        mode="none",
        settings=settings,
        slos=slos,
        candidate_histograms=candidate_histograms,
        flags=flags,
        notes=[note],
    )
    side_by_side = [
        e.model_copy(
            update={
                "base_stats": analyse.median_stats(stored.endpoints[e.endpoint].trials),
                "base_histogram": stored.endpoints[e.endpoint].histogram,
            }
        )
        if e.endpoint in stored.endpoints and stored.endpoints[e.endpoint].trials
        else e
        for e in result.endpoints
    ]
    differences = testbed.environment_differences(stored.environment, environment)
    return result.model_copy(update={"endpoints": side_by_side, "environment_differences": differences})
