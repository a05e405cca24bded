"""The performance test report rendered from fixture inputs, and the helpers that gather them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfci.analysis.breaking_point import Step, Thresholds, analyse
from perfci.analysis.recommend import Finding
from perfci.commands.report_doc import reproduce_command, scenario_description, stressed_scenarios
from perfci.config import Profile, load_config
from perfci.measure.stress import StressPlan, StressRun
from perfci.model import (
    ArmInfo,
    Comparison,
    DatabaseCounters,
    EndpointComparison,
    EndpointStats,
    NoiseFloor,
    QueryStat,
    ResourcePeak,
    ScenarioComparison,
    SloResult,
    SloSpec,
)
from perfci.render.performance_report import Machine, ReportInputs, database_engine, render_performance_report
from tests.builders import environment

NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
PROJECT = Path(__file__).resolve().parents[2]
ENVIRONMENT = environment(runner_os="Linux 6.1", cpu_model="Test CPU @ 2.0GHz")
SLOS = [SloSpec(endpoint="POST /auth/login", p95_ms=500, error_rate=0.001), SloSpec(endpoint="GET /users", p95_ms=250)]
QUERY = "SELECT users.id, users.email\n  FROM users WHERE users.email = $1"


def stats(p50: float, n: int, errors: int = 0) -> EndpointStats:
    return EndpointStats(
        n=n, errors=errors, p50=p50, p90=p50 * 1.5, p95=p50 * 2, p99=p50 * 3, mean=p50 * 1.1, rps=n / 30
    )


def endpoint(name: str, p50: float, n: int, errors: dict[str, int] | None = None) -> EndpointComparison:
    kinds = errors or {}
    return EndpointComparison(
        endpoint=name,
        base_stats=None,
        candidate_stats=stats(p50, n, sum(kinds.values())),
        verdict="no_change",
        metrics=[],
        noise=NoiseFloor(cv={"p95": 0.042}, mde={}),
        candidate_errors=kinds,
    )


def comparison(database: bool) -> Comparison:
    counters = DatabaseCounters(
        xact_commit=1200,
        xact_rollback=3,
        blks_read=10,
        blks_hit=990,
        tup_fetched=5000,
        tup_inserted=40,
        tup_updated=60,
        top_queries=[QueryStat(query=QUERY, calls=900, mean_ms=0.42, total_ms=378.0)],
    )
    return Comparison(
        created_at=NOW,
        mode="none",
        base=None,
        candidate=ArmInfo(label="working tree@abc1234", environment=ENVIRONMENT),
        profile="full",
        alpha=0.05,
        power=0.8,
        scenarios=[
            ScenarioComparison(
                scenario="journeys",
                mode="none",
                base_trials=0,
                candidate_trials=8,
                endpoints=[
                    endpoint("GET /users", 6.0, 3000),
                    endpoint("POST /auth/login", 280.0, 240, {"HTTP 500: internal error": 2}),
                    endpoint("GET /users/{id}|<script>", 3.0, 60),
                ],
                slos=[
                    SloResult(endpoint="POST /auth/login", metric="p95", limit=500, observed=560.0, ok=False),
                    SloResult(endpoint="POST /auth/login", metric="error_rate", limit=0.001, observed=0.0083, ok=False),
                    SloResult(endpoint="GET /users", metric="p95", limit=250, observed=12.0, ok=True),
                ],
                flags=["candidate trial 3: missed its arrival rate"],
                resources={
                    "candidate": [
                        ResourcePeak(source="service", cpu_percent_peak=99.0, cpu_percent_mean=87.0, rss_mb_peak=142.0),
                        ResourcePeak(source="locust", cpu_percent_peak=41.0, cpu_percent_mean=33.0, rss_mb_peak=88.0),
                    ]
                },
                database={"candidate": counters} if database else {},
            )
        ],
    )


def stress_run(scenario: str, service_cpu: float, locust_cpu: float = 30.0) -> StressRun:
    """Three steps; the third breaks GET /users p95 = 250 ms at the given CPU means."""
    rng = np.random.default_rng(7)
    frames, schedule, rows = [], [], []
    for i, (users, rate, median) in enumerate(((4, 40, 5), (8, 80, 6), (16, 90, 300))):
        start = rng.uniform(i * 10, i * 10 + 10, rate * 10)
        frames.append(
            pd.DataFrame(
                {
                    "start_s": start,
                    "endpoint": "GET /users",
                    "latency_ms": median * rng.lognormal(0, 0.2, len(start)),
                    "ok": True,
                    "error": None,
                }
            )
        )
        schedule.append(Step(offered=users, start_s=i * 10, end_s=i * 10 + 10))
        for source, cpu in (("service", service_cpu), ("locust", locust_cpu)):
            rows.append({"t_s": i * 10 + 5.0, "source": source, "cpu_percent": cpu, "rss_mb": 1.0})
    result = analyse(
        pd.concat(frames, ignore_index=True),
        schedule,
        scenario=scenario,
        model="closed",
        slos=SLOS,
        thresholds=Thresholds(),
        resources=pd.DataFrame(rows),
    )
    return StressRun(
        scenario=scenario,
        started_at=NOW,
        elapsed_s=38.0,
        stop_reason="broke at 16",
        plan=StressPlan(),
        breaking_point=result,
    )


def inputs(**changes: object) -> ReportInputs:
    base: dict[str, object] = {
        "generated_at": NOW,
        "command": "nox -s report -- --profile full",
        "run_dir": ".perfci/runs/20250301T120000Z-report",
        "commit": "abc1234def5678",
        "dirty": False,
        "environment": ENVIRONMENT,
        "machine": Machine(
            memory_gb=7.75, load_average_before=(1.5, 1.2, 1.0), load_average_after=(2.1, 1.6, 1.1), service_workers=1
        ),
        "target_description": "process (uvicorn, SQLite, 1 worker)",
        "database_engine": "SQLite",
        "profile_name": "full",
        "profile": Profile(trials=8, duration_s=30, warmup_s=5, users=32, spawn_rate=50),
        "scenarios": ["journeys"],
        "scenario_descriptions": {"journeys": "A signed-in user browses profiles and searches."},
        "slos": SLOS,
        "service_env": {"USERSVC_HASH_TIME_COST": "2"},
        "comparison": comparison(database=False),
        "stress": [stress_run("journeys", service_cpu=97.0)],
        "stress_budget_s": 600.0,
        "findings": [],
    }
    base.update(changes)
    return ReportInputs(**base)  # type: ignore[arg-type]


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_every_section_in_order() -> None:
    text = render_performance_report(inputs())
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "Summary",
        "Environment",
        "Scenarios and SLOs",
        "Results per endpoint",
        "SLO verdicts",
        "Breaking points",
        "Resources",
        "Database",
        "Findings and recommendations",
        "How to reproduce",
    ]
    assert text.startswith("# Performance test report\n\nGenerated on 2025-03-01 12:30 UTC by `nox -s report")
    assert text.endswith("\n")
    assert not text.endswith("\n\n")


def test_environment_names_the_machine_and_its_load() -> None:
    env = section(render_performance_report(inputs()), "Environment")
    assert "| CPU | Test CPU @ 2.0GHz, 2 cores |" in env
    assert "| Memory | 7.8 GB |" in env
    assert "| Database | SQLite |" in env
    assert "| Load average (1/5/15 min) | 1.50 / 1.20 / 1.00 before, 2.10 / 1.60 / 1.10 after |" in env
    assert "USERSVC\\_HASH\\_TIME\\_COST=2" in env


def test_results_per_endpoint_are_the_median_figures_with_errors_and_noise() -> None:
    results = section(render_performance_report(inputs()), "Results per endpoint")
    assert "| GET /users | 3000 | 100/s | 6.00 ms | 12.0 ms | 18.0 ms | 0 (0.00 %) | 4.2 % |" in results
    assert "| POST /auth/login | 240 | 8.0/s | 280 ms | 560 ms | 840 ms | 2 (0.83 %) | 4.2 % |" in results
    assert "| POST /auth/login | HTTP 500: internal error | 2 |" in results
    assert "> candidate trial 3: missed its arrival rate" in results
    # Service-supplied names stay inert: no table split, no HTML.
    assert "GET /users/{id}&#124;&lt;script&gt;" in results
    assert "<script>" not in results


def test_slo_verdicts_and_summary_count_breaches() -> None:
    text = render_performance_report(inputs())
    slos = section(text, "SLO verdicts")
    assert "| journeys | POST /auth/login | p95 | 500 ms | 560 ms | ❌ breached |" in slos
    assert "| journeys | POST /auth/login | error_rate | 0.10 % | 0.83 % | ❌ breached |" in slos
    assert "| journeys | GET /users | p95 | 250 ms | 12.0 ms | ✅ met |" in slos
    assert "- SLOs: 1 of 3 checks met (2 breached)." in section(text, "Summary")
    method = section(text, "Scenarios and SLOs")
    assert "| POST /auth/login | all | p95 < 500 ms, errors < 0.10 % |" in method
    assert "| journeys | A signed-in user browses profiles and searches. |" in method
    assert "8 trials per scenario, each 5 s of warm-up" in method


def test_breaking_points_give_the_rate_the_first_failure_and_the_saturated_resource() -> None:
    run = stress_run("journeys", service_cpu=97.0)
    rate = run.breaking_point.max_rps_within_slo
    assert rate is not None
    text = render_performance_report(inputs(stress=[run]))
    points = section(text, "Breaking points")
    row = next(line for line in points.splitlines() if line.startswith("| journeys |"))
    assert f"| {rate:.0f} req/s | 8 users |" in row
    assert "GET /users p95" in row
    assert "saturated: service CPU 97 % of 100 % (service)" in row
    assert row.endswith("| yes |")
    assert "### journeys" in points
    assert "| 16 |" in points  # the step table of the stress
    assert "budget of 600 s" in points
    assert f"Breaking point of journeys: {rate:.0f} req/s within SLO (at 8 users)" in section(text, "Summary")


def test_a_generator_bound_stress_is_marked_invalid() -> None:
    text = render_performance_report(inputs(stress=[stress_run("auth", service_cpu=40.0, locust_cpu=97.0)]))
    row = next(line for line in section(text, "Breaking points").splitlines() if line.startswith("| auth |"))
    assert "load generator CPU 97 %" in row
    assert row.endswith("| **no** |")
    assert "**Invalid: the load generator was the bottleneck.**" in section(text, "Summary")


def test_no_stress_says_so() -> None:
    text = render_performance_report(inputs(stress=[]))
    assert "No scenario was stressed in this run." in section(text, "Breaking points")
    assert "- Breaking points: no scenario was stressed in this run." in section(text, "Summary")


def test_resources_table_lists_service_and_locust_peaks() -> None:
    resources = section(render_performance_report(inputs()), "Resources")
    assert "| journeys | service app | 99 % | 87 % | 142 MB |" in resources
    assert "| journeys | Locust | 41 % | 33 % | 88 MB |" in resources
    empty = comparison(database=False)
    bare = empty.model_copy(update={"scenarios": [empty.scenarios[0].model_copy(update={"resources": {}})]})
    assert "No resource samples" in section(render_performance_report(inputs(comparison=bare)), "Resources")


def test_database_section_on_sqlite_and_on_postgresql() -> None:
    sqlite = section(render_performance_report(inputs()), "Database")
    assert "ran on SQLite" in sqlite
    assert "commits" not in sqlite

    postgres = section(
        render_performance_report(
            inputs(comparison=comparison(database=True), database_engine="PostgreSQL", target_description="compose")
        ),
        "Database",
    )
    assert "| journeys | 1200 | 3 | 99.0 % | 5000 | 100 | 0 | 0 |" in postgres
    assert (
        "<code>SELECT users.id, users.email FROM users WHERE users.email = &#36;1</code> | 900 | 0.42 ms | 378 ms"
        in postgres
    )

    silent = section(render_performance_report(inputs(database_engine="PostgreSQL")), "Database")
    assert "no counters were recorded" in silent


def test_findings_are_listed_with_severity_and_a_clean_run_says_no_rule_fired() -> None:
    findings = [
        Finding(rule="errors_by_kind", title="2 requests failed (0.06%)", detail="2 x HTTP 500", severity="warning"),
        Finding(rule="password_hash_dominates_login", title="Login hashing", detail="p50 280 ms", severity="info"),
    ]
    text = render_performance_report(inputs(findings=findings))
    listed = section(text, "Findings and recommendations")
    assert "- 🟡 warning **2 requests failed (0.06%)**: 2 x HTTP 500" in listed
    assert "- 🔵 info **Login hashing**: p50 280 ms" in listed
    assert "- Findings: 1 warning, 1 info" in section(text, "Summary")
    assert "No rule fired" in section(render_performance_report(inputs()), "Findings and recommendations")


def test_reproduce_gives_the_command_and_the_run_directory() -> None:
    text = render_performance_report(inputs(dirty=True))
    assert "```sh\nnox -s report -- --profile full\n```" in section(text, "How to reproduce")
    assert "`.perfci/runs/20250301T120000Z-report`" in text
    assert "from commit abc1234 (with uncommitted changes)" in text


def test_reproduce_command_from_the_cli_and_from_python() -> None:
    config = load_config(
        PROJECT / "pyproject.toml", environ={}, overrides={"profile": "smoke", "default_scenarios": ["auth"]}
    )
    cli = ["perfci", "report-doc", "--profile", "smoke", "--scenario", "auth"]
    assert reproduce_command(cli, config) == "perfci report-doc --profile smoke --scenario auth"
    assert reproduce_command(["perfci", "report-doc"], config) == "perfci report-doc"
    assert reproduce_command(["python"], config) == "perfci report-doc --profile smoke --scenario auth"


def test_stressed_scenarios_follow_the_scenario_selection() -> None:
    full = load_config(PROJECT / "pyproject.toml", environ={})
    assert stressed_scenarios(full) == [s for s in full.stress.scenarios if s in full.scenarios]
    narrowed = load_config(PROJECT / "pyproject.toml", environ={}, overrides={"default_scenarios": ["journeys"]})
    assert stressed_scenarios(narrowed) == ["journeys"]
    search_only = load_config(PROJECT / "pyproject.toml", environ={}, overrides={"default_scenarios": ["search"]})
    assert stressed_scenarios(search_only) == []


def test_database_engine_and_scenario_description(tmp_path: Path) -> None:
    assert database_engine("process (uvicorn, SQLite, 1 worker)", comparison(database=True)) == "SQLite"
    assert database_engine("compose (docker compose, x, PostgreSQL)", comparison(database=False)) == "PostgreSQL"
    assert database_engine("process", comparison(database=True)) == "PostgreSQL"
    assert "not known" in database_engine("url (http://127.0.0.1:1)", comparison(database=False))
    locustfile = tmp_path / "journeys.py"
    locustfile.write_text('"""Signed-in users browse.\n\nMore text."""\nimport os\n', encoding="utf-8")
    assert scenario_description(locustfile) == "Signed-in users browse."
    assert scenario_description(tmp_path / "missing.py") == ""


@pytest.mark.parametrize("engine", ["SQLite", "PostgreSQL"])
def test_rendering_is_deterministic(engine: str) -> None:
    assert render_performance_report(inputs(database_engine=engine)) == render_performance_report(
        inputs(database_engine=engine)
    )
