"""Findings gathered from run directories built on disk with the model types, as the pipeline writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfci import testbed
from perfci.analysis.breaking_point import Step, Thresholds, analyse
from perfci.analysis.evidence import (
    evidence_from_run,
    findings_for_run,
    run_scenarios,
)
from perfci.collect import merge_counters, with_run_measurements
from perfci.commands.common import write_report_files
from perfci.errors import DataError
from perfci.measure.stress import StressPlan, StressRun
from perfci.model import (
    Arm,
    ArmInfo,
    Comparison,
    DatabaseCounters,
    EndpointComparison,
    NoiseFloor,
    QueryStat,
    RunInfo,
    ScenarioComparison,
    SloSpec,
)
from perfci.render.html import FINDINGS_HEADING, TRENDS_HEADING
from perfci.rundir import DATABASE_FILE, REPORT_HTML, RUN_FILE, stress_file, trial_dir, write_model
from perfci.trial_figures import endpoint_stats, measured_window
from tests.builders import environment

NOW = datetime(2025, 3, 1, tzinfo=UTC)
WARMUP_S = 2.0
DURATION_S = 8.0
POOL_ERROR = "TimeoutError: QueuePool limit of size 5 overflow 10 reached"
SEARCH_QUERY = "SELECT users.id FROM users WHERE users.display_name LIKE $1 ORDER BY users.id LIMIT $2"


def samples(
    latency: dict[str, float], *, seed: int = 0, errors: dict[str, tuple[str, float]] | None = None
) -> pd.DataFrame:
    """Ten requests a second per endpoint for warm-up + window + 1 s tail; `errors` fails an endpoint from t."""
    rng = np.random.default_rng(seed)
    frames = []
    for endpoint, median in latency.items():
        start = np.sort(rng.uniform(0, WARMUP_S + DURATION_S + 1, int(10 * (WARMUP_S + DURATION_S + 1))))
        error = np.full(len(start), None, dtype=object)
        if errors and endpoint in errors:
            kind, begins = errors[endpoint]
            error[start >= begins] = kind
        ok = np.array([e is None for e in error])
        frames.append(
            pd.DataFrame(
                {
                    "start_s": start,
                    "endpoint": endpoint,
                    "latency_ms": median * rng.lognormal(0, 0.1, len(start)),
                    "status": np.where(ok, 200, 500).astype("int32"),
                    "ok": ok,
                    "bytes": np.int64(100),
                    "error": pd.array(error, dtype="string"),
                    "lag_ms": 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values("start_s", ignore_index=True)


def resources(service_cpu: float, locust_cpu: float = 30.0) -> pd.DataFrame:
    """One sample a second per source; the warm-up seconds show a spike that the window must leave out."""
    rows = []
    for t in np.arange(0.5, WARMUP_S + DURATION_S + 1, 1.0):
        warm = t < WARMUP_S
        rows.append({"t_s": t, "source": "service", "cpu_percent": 190.0 if warm else service_cpu, "rss_mb": 80.0})
        rows.append({"t_s": t, "source": "locust", "cpu_percent": locust_cpu, "rss_mb": 60.0 + t})
    return pd.DataFrame(rows)


def write_trial(
    run_dir: Path,
    scenario: str,
    arm: Arm,
    index: int,
    frame: pd.DataFrame,
    *,
    resource_frame: pd.DataFrame | None = None,
    database: DatabaseCounters | None = None,
    locust_cpu_peak: float | None = 40.0,
    folder: str | None = None,
) -> Path:
    from perfci.model import TrialInfo

    directory = run_dir / scenario / folder if folder else trial_dir(run_dir, scenario, arm, index)
    directory.mkdir(parents=True)
    frame.to_parquet(directory / "samples.parquet")
    window = measured_window(frame, WARMUP_S, DURATION_S)
    write_model(
        directory / "trial.json",
        TrialInfo(
            scenario=scenario,
            arm=arm,
            index=index,
            started_at=NOW,
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
            users=8,
            achieved_rps=len(window) / DURATION_S,
            locust_exit_codes=[0],
            locust_cpu_peak=locust_cpu_peak,
            endpoints=endpoint_stats(window, DURATION_S),
        ),
    )
    if resource_frame is not None:
        resource_frame.to_parquet(directory / "resources.parquet")
    if database is not None:
        write_model(directory / DATABASE_FILE, database)
    return directory


def write_run_info(run_dir: Path, env: dict[str, str]) -> None:
    write_model(
        run_dir / RUN_FILE,
        RunInfo(
            label="test",
            created_at=NOW,
            command=["perfci", "run"],
            config={"service": {"env": env, "workers": 1}},
            environment=environment(),
            candidate_commit="abc",
        ),
    )


def comparison_for(scenario: str, endpoints: list[str], verdicts: dict[str, str] | None = None) -> Comparison:
    from perfci.model import EndpointStats

    blank = EndpointStats(n=1, errors=0, p50=1, p90=1, p95=1, p99=1, mean=1, rps=1)
    return Comparison(
        created_at=NOW,
        mode="ab",
        base=ArmInfo(label="main"),
        candidate=ArmInfo(label="working tree"),
        profile="pr",
        alpha=0.05,
        power=0.8,
        scenarios=[
            ScenarioComparison(
                scenario=scenario,
                mode="ab",
                base_trials=2,
                candidate_trials=2,
                endpoints=[
                    EndpointComparison(
                        endpoint=e,
                        base_stats=blank,
                        candidate_stats=blank,
                        verdict=(verdicts or {}).get(e, "no_change"),
                        metrics=[],
                        noise=NoiseFloor(cv={}, mde={}),
                    )
                    for e in endpoints
                ],
                slos=[],
            )
        ],
    )


HEALTHY = {"GET /users/me": 4.0, "GET /users": 6.0, "POST /auth/login": 9.0}


def test_evidence_holds_the_candidates_measured_window_only(tmp_path: Path) -> None:
    for index in range(2):
        write_trial(
            tmp_path, "journeys", "candidate", index, samples(HEALTHY, seed=index), resource_frame=resources(50)
        )
        # The base arm fails everything: none of it may reach the candidate's evidence.
        write_trial(tmp_path, "journeys", "base", index, samples(HEALTHY, errors={"GET /users": ("HTTP 500", 0)}))
    # A stress step overloads on purpose; its errors are not the run's.
    overloaded = samples(HEALTHY, errors={"GET /users": ("HTTP 503", 0)})
    write_trial(tmp_path, "journeys", "candidate", 0, overloaded, folder="stress-0")

    evidence = evidence_from_run(tmp_path)

    assert run_scenarios(tmp_path) == ["journeys"]
    assert [(t.arm, t.index) for t in evidence.trials] == [("candidate", 0), ("candidate", 1)]
    assert evidence.samples is not None
    assert evidence.samples["start_s"].min() >= WARMUP_S
    assert evidence.samples["start_s"].max() < WARMUP_S + DURATION_S
    assert len(evidence.samples) == sum(s.n for t in evidence.trials for s in t.endpoints.values())
    assert bool(evidence.samples["ok"].all())
    assert evidence.resources is not None
    # The 190 % warm-up spike lies outside every measured window.
    assert evidence.resources.loc[evidence.resources["source"] == "service", "cpu_percent"].max() == 50.0
    assert evidence.stress == []
    assert findings_for_run(tmp_path) == []


def test_pool_errors_in_the_trials_become_findings_with_their_start(tmp_path: Path) -> None:
    frame = samples(HEALTHY, errors={"GET /users": (POOL_ERROR, 6.0)})
    write_trial(tmp_path, "journeys", "candidate", 0, frame)

    findings = {f.rule: f for f in findings_for_run(tmp_path)}

    assert set(findings) == {"connection_pool_waits", "errors_by_kind"}
    window = measured_window(frame, WARMUP_S, DURATION_S)
    failed = window[~window["ok"]]
    assert set(failed["endpoint"]) == {"GET /users"}
    assert f"{len(failed)} requests failed on the connection pool" in findings["connection_pool_waits"].detail
    assert f"first at {failed['start_s'].min():.1f} s" in findings["errors_by_kind"].detail
    assert failed["start_s"].min() >= 6.0
    assert findings["connection_pool_waits"].severity == "critical"


def test_hash_bound_login_uses_the_run_snapshot_of_the_service_settings(tmp_path: Path) -> None:
    write_run_info(tmp_path, {"USERSVC_HASH_TIME_COST": "3", "USERSVC_HASH_MEMORY_KIB": "65536"})
    slow_login = {**HEALTHY, "POST /auth/login": 150.0}
    write_trial(tmp_path, "auth", "candidate", 0, samples(slow_login), resource_frame=resources(93))

    [finding] = findings_for_run(tmp_path)

    assert finding.rule == "password_hash_dominates_login"
    assert "time cost 3, memory 65536 KiB" in finding.detail
    assert "service CPU 93 %" in finding.detail

    clean = tmp_path / "clean"
    write_trial(clean, "auth", "candidate", 0, samples(HEALTHY), resource_frame=resources(93))
    assert findings_for_run(clean) == []


def test_database_counters_are_merged_over_trials_and_feed_the_slower_query_rule(tmp_path: Path) -> None:
    arms: tuple[tuple[Arm, float], ...] = (("base", 0.8), ("candidate", 6.0))
    for index in range(2):
        for arm, mean_ms in ((a, m + index * (a == "candidate")) for a, m in arms):
            counters = DatabaseCounters(
                xact_commit=100,
                blks_hit=1000,
                top_queries=[QueryStat(query=SEARCH_QUERY, calls=500, mean_ms=mean_ms, total_ms=500 * mean_ms)],
            )
            write_trial(tmp_path, "search", arm, index, samples({"GET /users": 6.0}, seed=index), database=counters)
    comparison = comparison_for("search", ["GET /users", "POST /auth/refresh"], {"GET /users": "regression"})

    enriched = with_run_measurements(tmp_path, comparison)
    candidate = enriched.scenarios[0].database["candidate"]
    assert candidate.xact_commit == 200
    assert candidate.blks_hit == 2000
    assert candidate.top_queries == [QueryStat(query=SEARCH_QUERY, calls=1000, mean_ms=6.5, total_ms=6500.0)]

    findings = {f.rule: f for f in findings_for_run(tmp_path, enriched)}
    assert "0.80 ms to 6.50 ms" in findings["database_query_slower"].detail
    assert "it likely serves GET /users" in findings["database_query_slower"].detail

    # Without a comparison there is no base to compare the queries with.
    assert "database_query_slower" not in {f.rule for f in findings_for_run(tmp_path)}


def test_a_run_without_counters_has_no_database_and_keeps_given_figures(tmp_path: Path) -> None:
    write_trial(tmp_path, "search", "candidate", 0, samples({"GET /users": 6.0}), resource_frame=resources(40))
    enriched = with_run_measurements(tmp_path, comparison_for("search", ["GET /users"]))
    scenario = enriched.scenarios[0]
    assert scenario.database == {}
    peaks = {p.source: p for p in scenario.resources["candidate"]}
    assert peaks["service"].cpu_percent_peak == 40.0
    assert peaks["locust"].rss_mb_peak == pytest.approx(60.0 + 9.5)
    assert merge_counters([]) is None


def test_corrupt_database_file_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    directory = write_trial(tmp_path, "search", "candidate", 0, samples({"GET /users": 6.0}))
    (directory / DATABASE_FILE).write_text('{"xact_commit": "many"}', encoding="utf-8")
    with pytest.raises(DataError, match="not valid database counters") as caught:
        with_run_measurements(tmp_path, comparison_for("search", ["GET /users"]))
    assert "regenerate" in caught.value.hint


def stress_run(service_cpu: float, database_cpu: float, locust_cpu: float) -> StressRun:
    """Three one-step windows; the last breaks the p95 SLO at the given CPU means."""
    rng = np.random.default_rng(1)
    frames, schedule, rows = [], [], []
    for i, (users, rate, median) in enumerate(((4, 40, 5), (8, 80, 6), (16, 90, 400))):
        start = rng.uniform(i * 10, i * 10 + 10, rate * 10)
        frames.append(
            pd.DataFrame(
                {
                    "start_s": start,
                    "endpoint": "GET /users/me",
                    "latency_ms": median * rng.lognormal(0, 0.2, len(start)),
                    "ok": True,
                    "error": None,
                }
            )
        )
        schedule.append(Step(offered=users, start_s=i * 10, end_s=i * 10 + 10))
        for source, cpu in (("service", service_cpu), ("database", database_cpu), ("locust", locust_cpu)):
            rows.append({"t_s": i * 10 + 5.0, "source": source, "cpu_percent": cpu, "rss_mb": 1.0})
    result = analyse(
        pd.concat(frames, ignore_index=True),
        schedule,
        scenario="journeys",
        model="closed",
        slos=[SloSpec(endpoint="GET /users/me", p95_ms=150)],
        thresholds=Thresholds(),
        resources=pd.DataFrame(rows),
    )
    return StressRun(
        scenario="journeys", started_at=NOW, elapsed_s=40, stop_reason="broke", plan=StressPlan(), breaking_point=result
    )


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        pytest.param((95.0, 5.0, 30.0), {"cpu_bound_database_idle"}, id="service-bound"),
        pytest.param((40.0, 5.0, 97.0), {"load_generator_saturated"}, id="generator-bound"),
        pytest.param((40.0, 5.0, 30.0), set(), id="nothing-saturated"),
    ],
)
def test_stress_results_in_the_run_dir_feed_the_saturation_rules(
    tmp_path: Path, cpu: tuple[float, float, float], expected: set[str]
) -> None:
    write_trial(tmp_path, "journeys", "candidate", 0, samples(HEALTHY))
    write_model(stress_file(tmp_path, "journeys"), stress_run(*cpu))

    evidence = evidence_from_run(tmp_path)

    assert [r.scenario for r in evidence.stress] == ["journeys"]
    assert {f.rule for f in findings_for_run(tmp_path)} == expected


def write_history(baselines_dir: Path, scenario: str, step_index: int, n: int = 40) -> None:
    """main's history: GET /users p95 at 20 ms, 30 % higher from refresh `step_index` on, 2 % noise."""
    from datetime import timedelta

    from perfci.model import HistoryLine

    rng = np.random.default_rng(3)
    history = baselines_dir / "history"
    history.mkdir(parents=True)
    lines = [
        HistoryLine(
            scenario=scenario,
            created_at=NOW + timedelta(days=i),
            git_commit=f"{i:07x}" + "a" * 33,
            endpoints={"GET /users": {"p95": 20.0 * (1.3 if i >= step_index else 1.0) * rng.lognormal(0, 0.02)}},
        )
        for i in range(n)
    ]
    (history / f"{scenario}.jsonl").write_text("".join(line.model_dump_json() + "\n" for line in lines))


def report_html(run_dir: Path, comparison: Comparison) -> str:
    """report.html as `perfci report` writes it into the run directory."""
    write_report_files(run_dir, comparison)
    return (run_dir / REPORT_HTML).read_text(encoding="utf-8")


def test_html_report_shows_the_findings_escaped_and_mains_trends(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    hostile = "<script>alert(1)</script> QueuePool limit reached"
    write_trial(run_dir, "search", "candidate", 0, samples({"GET /users": 6.0}, errors={"GET /users": (hostile, 4)}))
    write_model(
        run_dir / RUN_FILE,
        RunInfo(
            label="test",
            created_at=NOW,
            command=["perfci", "run"],
            config={"baselines_dir": str(tmp_path / "baselines"), "service": {"env": {}}},
            environment=environment(),
            candidate_commit="abc",
        ),
    )
    # The report reads the history of the run's own testbed, never another machine's.
    measured_on = RunInfo.model_validate_json((run_dir / RUN_FILE).read_text(encoding="utf-8")).environment
    write_history(tmp_path / "baselines" / testbed.testbed_id(measured_on), "search", step_index=25)
    write_history(tmp_path / "baselines" / "another-cpu-2c-process-12345678", "search", step_index=5)

    html = report_html(run_dir, comparison_for("search", ["GET /users"]))

    findings = html.split(f"<h2>{FINDINGS_HEADING}</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Requests waited for a database connection" in findings
    assert '<span class="critical">critical</span>' in findings
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in findings
    assert "<script>" not in html
    trends = html.split(f"<h2>{TRENDS_HEADING}</h2>", 1)[1]
    assert f"beginning at {25:07x}" in trends
    assert f"beginning at {5:07x}" not in trends  # the other testbed's step
    assert trends.count("<svg") == 1


def test_html_report_of_a_clean_run_says_no_rule_fired_and_has_no_trends_without_history(tmp_path: Path) -> None:
    write_trial(tmp_path, "search", "candidate", 0, samples({"GET /users": 6.0}), resource_frame=resources(30))
    html = report_html(tmp_path, comparison_for("search", ["GET /users"]))
    assert "No rule fired" in html.split(FINDINGS_HEADING, 1)[1]
    assert TRENDS_HEADING not in html
    # Resource peaks come from the run's files when the comparison carries none.
    assert '<td class="name">service app</td>' in html
