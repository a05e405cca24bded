"""The typed records passed between stages and stored on disk: samples, trials, baselines, comparisons.

Every file contract lives here so that each stage reads what the previous one wrote, validated. Models are
frozen and reject unknown keys: a file written by a newer perfci, or edited by hand into nonsense, is an
error at load time rather than a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Bumped whenever a stored file's meaning changes; readers reject a newer version.
SCHEMA_VERSION = 1

# Raw sample columns (one row per request), stored as Parquet in `<trial dir>/samples.parquet`.
SAMPLE_COLUMNS: dict[str, str] = {
    "start_s": "float64",  # request start, seconds after the trial's t0 (Locust's test_start)
    "endpoint": "string",  # "METHOD /path/{template}", never a concrete id
    "latency_ms": "float64",  # from the intended start for open-model users, else from the send
    "status": "int32",  # HTTP status; 0 for a connection error
    "ok": "bool",
    "bytes": "int64",  # response bytes
    "error": "string",  # error text; null when ok
    "lag_ms": "float64",  # open model: actual send minus intended start; 0 for closed-model users
}

Arm = Literal["base", "candidate"]
# How a stage tells the user what it is doing: one line of text (the CLI prints it on stderr).
Say = Callable[[str], None]
Metric = Literal["p50", "p90", "p95", "p99", "mean", "rps", "error_rate"]
# Per-endpoint throughput is never judged (docs/statistics.md explains why); the others can be.
JudgedMetric = Literal["p50", "p90", "p95", "p99", "mean", "error_rate"]
JUDGEABLE_METRICS: tuple[JudgedMetric, ...] = ("p50", "p90", "p95", "p99", "mean", "error_rate")
Verdict = Literal["regression", "improvement", "no_change", "inconclusive"]
# Latency metrics are better when lower; throughput when higher; error rate is judged on its own rules.


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndpointStats(Frozen):
    """One endpoint's figures in one trial, computed from the raw samples of the measured window."""

    n: int
    errors: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    rps: float
    error_kinds: dict[str, int] = Field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0


# One arm's trials: per trial, the figures of each endpoint (what the statistics and SLOs read).
Trials = Sequence[Mapping[str, EndpointStats]]


class Histogram(Frozen):
    """A compact latency histogram: log-spaced bucket edges in ms and a count per bucket."""

    edges_ms: list[float]
    counts: list[int]


NOT_RECORDED = "not recorded"  # a field that files written before it existed lack


class Environment(Frozen):
    """Where a measurement was taken; comparisons across different environments are named in reports."""

    runner_os: str
    cpu_model: str
    cores: int
    python: str
    locust_version: str
    perfci_version: str
    target_kind: str
    image_ids: dict[str, str] = Field(default_factory=dict)
    # Whether the CPUs were held out of idle states (perfci/measure/cpu_idle.py): it changes latency and its noise.
    cpu_idle: str = NOT_RECORDED

    @property
    def cpu_idle_recorded(self) -> bool:
        return self.cpu_idle != NOT_RECORDED


class TrialInfo(Frozen):
    """`<trial dir>/trial.json`: how one Locust run went and its per-endpoint figures."""

    schema_version: int = SCHEMA_VERSION
    scenario: str
    arm: Arm
    index: int
    started_at: datetime
    warmup_s: float
    duration_s: float  # the measured window, after warm-up
    # The trial's t0 (Locust's test start, epoch seconds) and its measured window on the wall clock. Two
    # concurrent arms share one window: from the later arm's t0 plus warm-up to the earlier arm's end.
    t0_epoch: float | None = None
    window_epoch: tuple[float, float] | None = None
    users: int
    target_rps: float | None = None  # open model only
    achieved_rps: float
    locust_exit_codes: list[int]
    locust_cpu_peak: float | None = None  # percent of one core
    flags: list[str] = Field(default_factory=list)  # reasons this trial is less trustworthy
    endpoints: dict[str, EndpointStats]


class ResourcePeak(Frozen):
    source: str  # "service", "locust", "database", or a container name
    cpu_percent_peak: float
    cpu_percent_mean: float
    rss_mb_peak: float


class QueryStat(Frozen):
    query: str
    calls: int
    mean_ms: float
    total_ms: float


class DatabaseCounters(Frozen):
    """PostgreSQL counters over a trial (pg_stat_database deltas) and its top queries."""

    xact_commit: int = 0
    xact_rollback: int = 0
    blks_read: int = 0
    blks_hit: int = 0
    tup_returned: int = 0
    tup_fetched: int = 0
    tup_inserted: int = 0
    tup_updated: int = 0
    tup_deleted: int = 0
    deadlocks: int = 0
    temp_bytes: int = 0
    top_queries: list[QueryStat] = Field(default_factory=list)


class RunInfo(Frozen):
    """`<run dir>/run.json`: what was run, where, on which code."""

    schema_version: int = SCHEMA_VERSION
    label: str
    created_at: datetime
    command: list[str]
    config: dict[str, Any]  # the resolved configuration, as run
    environment: Environment
    candidate_commit: str | None
    candidate_dirty: bool = False
    base_ref: str | None = None  # A/B only
    base_commit: str | None = None
    target_description: str = ""


class BaselineEndpoint(Frozen):
    trials: list[EndpointStats]
    histogram: Histogram


class Baseline(Frozen):
    """`baselines/<testbed id>/<scenario>.json`: main's per-trial statistics for one scenario on one testbed."""

    schema_version: int = SCHEMA_VERSION
    scenario: str
    profile: str
    created_at: datetime
    git_commit: str
    environment: Environment
    endpoints: dict[str, BaselineEndpoint]


class HistoryLine(Frozen):
    """One line of `baselines/<testbed id>/history/<scenario>.jsonl`: a summary per refresh of main."""

    schema_version: int = SCHEMA_VERSION
    scenario: str
    created_at: datetime
    git_commit: str
    # endpoint -> metric -> median over trials
    endpoints: dict[str, dict[str, float]]


class StatsSettings(Frozen):
    """How the comparison judges: built from [tool.perfci.statistics]."""

    # The per-PR false-fail budget: the chance that a PR without any change fails on a regression verdict,
    # over every judged test of every scenario (docs/statistics.md, "One family per PR").
    alpha: float = 0.01
    power: float = 0.8
    # metric -> smallest relative change worth a verdict
    min_effect: dict[str, float] = Field(
        default_factory=lambda: {
            "p50": 0.05,
            "mean": 0.05,
            "rps": 0.05,
            "p90": 0.10,
            "p95": 0.10,
            "p99": 0.10,
        }
    )
    # The metrics that get a test and a verdict; the rest are shown as figures. Every test in the family
    # costs power: p99 and mean of short trials are noisy and move with p95 and p50, so by default they are
    # shown, not judged (docs/statistics.md, "Which metrics").
    metrics: tuple[JudgedMetric, ...] = ("p50", "p95", "error_rate")

    @field_validator("metrics")
    @classmethod
    def _known_order(cls, value: tuple[JudgedMetric, ...]) -> tuple[JudgedMetric, ...]:
        if not value:
            raise ValueError('judge at least one metric, e.g. ["p50", "p95", "error_rate"]')
        return tuple(m for m in JUDGEABLE_METRICS if m in value)  # report order, no duplicates


class SloSpec(Frozen):
    """One [[tool.perfci.slo]] entry: absolute limits for an endpoint (in every scenario unless named)."""

    endpoint: str
    scenario: str | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None

    def applies(self, scenario: str, endpoint: str | None = None) -> bool:
        """Whether this SLO holds in `scenario` (and, when given, for `endpoint`)."""
        in_scenario = self.scenario is None or self.scenario == scenario
        return in_scenario and (endpoint is None or self.endpoint == endpoint)


# ----------------------------------------------------------------------------------------------------------
# comparison.json: the contract the terminal table, the PR comment and the HTML report render from.
# ----------------------------------------------------------------------------------------------------------


class MetricComparison(Frozen):
    metric: Metric
    base: float  # centre of the base arm (geometric mean over trials; plain mean for error_rate)
    candidate: float
    change: float  # relative change of the candidate, +0.14 = 14 % higher
    ci_low: float  # confidence interval of `change`
    ci_high: float
    # One-sided p of a change beyond the minimum effect, in the direction of the estimate.
    p_value: float
    p_adjusted: float  # over the PR's family (every scenario, endpoint, metric and error kind; Holm)
    min_effect: float
    verdict: Verdict
    # inconclusive only: pairs (trials per arm) beyond this run's that a fresh run would likely need
    more_trials_needed: int | None = None


class SloResult(Frozen):
    endpoint: str
    metric: Literal["p95", "p99", "error_rate"]
    limit: float  # ms for latency, a fraction for error_rate
    observed: float
    ok: bool


class NoiseFloor(Frozen):
    cv: dict[str, float]  # metric -> between-trial coefficient of variation (of log stats)
    mde: dict[str, float]  # metric -> minimum detectable relative change of the rule applied, at its power
    # metric -> requests a trial, too few for a verdict on it to mean anything: shown, not judged
    not_judged: dict[str, int] = Field(default_factory=dict)


class EndpointComparison(Frozen):
    endpoint: str
    # Absolute figures: per statistic the median over the arm's trials (n and errors are summed).
    base_stats: EndpointStats | None
    candidate_stats: EndpointStats
    verdict: Verdict  # the worst of its metrics (regression > inconclusive > improvement > no_change)
    metrics: list[MetricComparison]
    noise: NoiseFloor
    base_errors: dict[str, int] = Field(default_factory=dict)
    candidate_errors: dict[str, int] = Field(default_factory=dict)
    # Error kinds that occurred in significantly more candidate trials than base trials (an exact test in
    # the PR's family): a regression by themselves.
    new_error_kinds: list[str] = Field(default_factory=list)
    base_histogram: Histogram | None = None
    candidate_histogram: Histogram | None = None


class ArmInfo(Frozen):
    label: str  # "main@abc1234", "working tree"
    ref: str | None = None
    commit: str | None = None
    created_at: datetime | None = None  # for a stored baseline: when it was measured
    environment: Environment | None = None


class ScenarioComparison(Frozen):
    scenario: str
    mode: Literal["ab", "baseline", "none"]  # paired same-machine, unpaired vs stored, nothing to compare
    base_trials: int
    candidate_trials: int
    # How p-values were adjusted for the family of tests: Holm over the PR's family (docs/statistics.md, "One
    # family per PR"); "max-t" in comparisons written when an interleaved A/B scenario used max-T.
    adjustment: Literal["holm", "max-t"] = "holm"
    # "ab" only: whether the arms' trials ran one after the other or at the same time (profile.ab_schedule).
    schedule: Literal["interleaved", "concurrent"] = "interleaved"
    endpoints: list[EndpointComparison]
    slos: list[SloResult]
    environment_differences: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)  # unreliable trials, missed arrival rates
    notes: list[str] = Field(default_factory=list)  # e.g. "no baseline for X; run perfci baseline"
    resources: dict[Arm, list[ResourcePeak]] = Field(default_factory=dict)
    database: dict[Arm, DatabaseCounters] = Field(default_factory=dict)
    # Sequential A/B: the planned looks (pairs at each), the share of alpha the look reached may spend, and
    # why the run stopped where it did.
    looks: list[int] = Field(default_factory=list)
    alpha_share: float = 1.0
    stop_reason: str = ""


FailureKind = Literal["service_exited", "load_generator", "boot", "shard"]


class RunFailure(Frozen):
    """Why a run ended without a verdict: an infrastructure failure (exit 3), never the change's doing."""

    # What failed: the service during a trial, the load generator, the service's boot, or (in a merge of
    # sharded runs) a shard that measured nothing it could hand over. A comparison
    # written before the field existed could only mean a service that exited, hence the default.
    kind: FailureKind = "service_exited"
    message: str  # e.g. "the service exited during trial 2 of scenario journeys (...); log: PATH"
    hint: str = ""
    log: str | None = None  # the log that says more (the service's, Locust's, compose's), when known


class Comparison(Frozen):
    schema_version: int = SCHEMA_VERSION
    created_at: datetime
    mode: Literal["ab", "baseline", "none"]
    base: ArmInfo | None
    candidate: ArmInfo
    profile: str
    alpha: float
    power: float
    scenarios: list[ScenarioComparison]
    # Set when the only stored baseline belongs to another testbed: "measured on X; this is Y". The run
    # then shows both sets of figures without verdicts (perfci/testbed.py).
    not_comparable: str | None = None
    # Tests in the PR's one family (all scenarios, metrics and error kinds that could reject): `alpha` is
    # the chance that any of them falsely reports a regression.
    judged_tests: int = 0
    run_url: str | None = None
    report_url: str | None = None
    failure: RunFailure | None = None  # set when the run could not measure: no scenario is judged

    @property
    def regressions(self) -> list[tuple[str, EndpointComparison]]:
        return [(s.scenario, e) for s in self.scenarios for e in s.endpoints if e.verdict == "regression"]

    @property
    def slo_breaches(self) -> list[tuple[str, SloResult]]:
        return [(s.scenario, r) for s in self.scenarios for r in s.slos if not r.ok]

    @property
    def passed(self) -> bool:
        return self.failure is None and not self.regressions and not self.slo_breaches
