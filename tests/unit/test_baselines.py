"""Baselines and history on disk: round trip, diff-friendly text, and clear errors for bad files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perfci.analysis import baselines
from perfci.errors import DataError, ExitCode
from perfci.model import SCHEMA_VERSION, EndpointStats
from perfci.trial_figures import histogram
from tests.builders import environment

ENV = environment(runner_os="Linux-6.8-x86_64", cpu_model="AMD EPYC 7763")
WHEN = datetime(2025, 3, 1, 9, 15, tzinfo=UTC)


def figures(p50: float, errors: int = 0) -> EndpointStats:
    return EndpointStats(
        n=1234,
        errors=errors,
        p50=p50,
        p90=p50 * 1.61803398875,
        p95=p50 * 2.0000001,
        p99=p50 * 3.14159265359,
        mean=p50 * 1.2345678901,
        rps=154.25,
        error_kinds={"HTTP 500": errors} if errors else {},
    )


def built(scenario: str = "auth") -> baselines.Baseline:
    trials = [
        {"POST /auth/login": figures(101.23456789), "GET /users/me": figures(7.1)},
        {"POST /auth/login": figures(99.87654321, errors=2), "GET /users/me": figures(7.3)},
        {"POST /auth/login": figures(100.5)},  # an endpoint may be missing from a trial
    ]
    return baselines.build_baseline(
        scenario,
        profile="pr",
        trials=trials,
        histograms={"POST /auth/login": histogram([90.0, 100.0, 120.0])},
        environment=ENV,
        git_commit="abc1234def",
        created_at=WHEN,
    )


def test_a_baseline_round_trips_exactly(tmp_path: Path) -> None:
    baseline = built()
    path = baselines.write_baseline(tmp_path, baseline)
    assert path == tmp_path / "auth.json"
    assert baselines.load_baseline(tmp_path, "auth") == baseline
    assert len(baseline.endpoints["GET /users/me"].trials) == 2
    assert sum(baseline.endpoints["GET /users/me"].histogram.counts) == 0  # none given: an empty one


def test_stored_figures_are_rounded_to_six_significant_digits() -> None:
    stored = built().endpoints["POST /auth/login"].trials[0]
    assert stored.p50 == 101.235
    assert stored.p99 == 318.038
    assert stored.n == 1234


def test_the_file_is_sorted_pretty_small_and_keeps_number_lists_on_one_line(tmp_path: Path) -> None:
    text = baselines.write_baseline(tmp_path, built()).read_text(encoding="utf-8")
    assert text.endswith("}\n")
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    counts_line = next(line for line in text.splitlines() if '"counts"' in line)
    assert counts_line.strip().startswith('"counts": [0, 0,')
    assert len(text) < 20_000
    assert len(text.splitlines()) < 120


def test_writing_leaves_no_temporary_files_and_replaces_the_old_file(tmp_path: Path) -> None:
    baselines.write_baseline(tmp_path, built())
    newer = built().model_copy(update={"git_commit": "fff0000"})
    baselines.write_baseline(tmp_path, newer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json"]
    loaded = baselines.load_baseline(tmp_path, "auth")
    assert loaded is not None
    assert loaded.git_commit == "fff0000"


def test_a_missing_baseline_is_none_with_a_note_for_the_caller(tmp_path: Path) -> None:
    assert baselines.load_baseline(tmp_path, "search") is None
    assert baselines.missing_note("search") == "no baseline for search; run `perfci baseline` on main"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"schema_version": 1, "scenario": ', "is not valid JSON", id="truncated"),
        pytest.param("", "is not valid JSON", id="empty"),
        pytest.param(
            '{"schema_version": 1, "scenario": "auth"}', "is not a valid baseline: profile", id="missing-keys"
        ),
        pytest.param("[1, 2, 3]", "is not a valid baseline", id="wrong-shape"),
    ],
)
def test_a_corrupt_baseline_is_a_data_error_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "auth.json").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as raised:
        baselines.load_baseline(tmp_path, "auth")
    assert str(tmp_path / "auth.json") in raised.value.message
    assert "perfci baseline" in raised.value.hint
    assert raised.value.exit_code == ExitCode.USAGE


def test_a_field_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    raw = json.loads(baselines.baseline_text(built()))
    raw["endpoints"]["GET /users/me"]["trials"][0]["p50"] = "fast"
    (tmp_path / "auth.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match=r"endpoints\.GET /users/me\.trials\.0\.p50"):
        baselines.load_baseline(tmp_path, "auth")


def test_a_newer_schema_is_refused_with_an_upgrade_hint(tmp_path: Path) -> None:
    raw = json.loads(baselines.baseline_text(built()))
    raw["schema_version"] = SCHEMA_VERSION + 1
    raw["something_new"] = {"x": 1}
    (tmp_path / "auth.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match=f"schema_version {SCHEMA_VERSION + 1}") as raised:
        baselines.load_baseline(tmp_path, "auth")
    assert "upgrade perfci" in raised.value.hint


def test_a_baseline_of_another_scenario_is_refused(tmp_path: Path) -> None:
    baselines.write_baseline(tmp_path, built("sessions"))
    (tmp_path / "sessions.json").rename(tmp_path / "auth.json")
    with pytest.raises(DataError, match="holds scenario 'sessions'"):
        baselines.load_baseline(tmp_path, "auth")


def test_history_gains_one_summary_line_per_refresh(tmp_path: Path) -> None:
    first = built()
    second = first.model_copy(update={"git_commit": "def5678", "created_at": WHEN.replace(day=2)})
    for baseline in (first, second):
        baselines.append_history(tmp_path, baselines.history_line(baseline))
    path = tmp_path / "history" / "auth.jsonl"
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    lines = baselines.read_history(tmp_path, "auth")
    assert [line.git_commit for line in lines] == ["abc1234def", "def5678"]
    login = lines[0].endpoints["POST /auth/login"]
    assert login["p50"] == 100.5  # the median of 101.235, 99.8765, 100.5
    assert login["error_rate"] == 0.0
    assert set(login) == {"p50", "p90", "p95", "p99", "mean", "rps", "error_rate"}


def test_history_of_a_scenario_without_one_is_empty(tmp_path: Path) -> None:
    assert baselines.read_history(tmp_path, "auth") == []


def test_a_bad_history_line_names_file_and_line(tmp_path: Path) -> None:
    baselines.append_history(tmp_path, baselines.history_line(built()))
    path = tmp_path / "history" / "auth.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"auth\.jsonl:2 is not valid JSON"):
        baselines.read_history(tmp_path, "auth")


def test_a_newer_history_line_is_refused(tmp_path: Path) -> None:
    line = baselines.history_line(built()).model_dump(mode="json")
    line["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "auth.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="schema_version") as raised:
        baselines.read_history(tmp_path, "auth")
    assert "upgrade perfci" in raised.value.hint


def test_a_baseline_needs_trials() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        baselines.build_baseline("auth", profile="pr", trials=[], histograms={}, environment=ENV, git_commit="x")
