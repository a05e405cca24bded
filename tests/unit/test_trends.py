"""Change points in synthetic histories: a known step is found at its commit; flat noise stays quiet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perfci.analysis.trends import change_points, load_trends, read_history, series_from_history, trend_report
from perfci.errors import DataError
from tests.builders import history, step_at


@pytest.mark.parametrize("seed", range(20))
def test_a_clear_step_is_found_at_its_commit_and_nowhere_else(seed: int) -> None:
    report = trend_report("journeys", history(step_at(37, 0.30), seed=seed, noise=0.02))
    assert len(report.change_points) == 1
    found = report.change_points[0]
    assert (found.endpoint, found.metric) == ("GET /users/me", "p95")
    assert found.index == 37
    assert found.commit == f"{37:040x}"
    assert found.previous_commit == f"{36:040x}"
    assert found.direction == "regression"
    assert found.change == pytest.approx(0.30, abs=0.03)
    assert found.p_value < 1e-5
    assert not found.is_drift


def test_a_step_four_noise_widths_high_is_found_within_a_commit_of_its_start() -> None:
    # A 20 % step in 5 % noise: the least-squares location itself wanders by chance; it must stay close.
    found = [trend_report("journeys", history(step_at(37, 0.20), seed=seed)).change_points for seed in range(50)]
    assert all(len(points) == 1 for points in found)
    offsets = [abs(points[0].index - 37) for points in found]
    assert max(offsets) <= 3
    assert sum(offset <= 1 for offset in offsets) >= 45


def test_flat_noisy_histories_raise_no_change_point() -> None:
    alarms = [
        cp
        for seed in range(100)
        for cp in trend_report("journeys", history(np.full(60, 20.0), seed=seed)).change_points
    ]
    assert alarms == []


def test_a_slow_drift_is_one_finding_that_begins_where_the_drift_began() -> None:
    levels = np.r_[np.full(30, 20.0), np.linspace(20.0, 26.0, 16)[1:], np.full(20, 26.0)]
    for seed in range(15):
        found = trend_report("journeys", history(levels, seed=seed, noise=0.03)).change_points
        assert len(found) == 1, found
        assert 28 <= found[0].index <= 32  # the drift's first raised value is commit 30
        assert found[0].change == pytest.approx(0.30, abs=0.08)


def test_lower_throughput_is_a_regression_and_faster_latency_an_improvement() -> None:
    lines = history(step_at(30, -0.25), seed=3)
    report = trend_report("journeys", lines)
    assert [(cp.metric, cp.direction) for cp in report.change_points] == [("p95", "improvement")]
    rps = series_from_history(
        line.model_copy(update={"endpoints": {"GET /users/me": {"rps": 300.0 if i < 30 else 200.0}}})
        for i, line in enumerate(lines)
    )
    assert [cp.direction for cp in change_points(rps[0])] == ["regression"]


def test_history_files_round_trip_and_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    lines = history(step_at(30, 0.3), seed=1)
    (folder / "journeys.jsonl").write_text("\n".join(line.model_dump_json() for line in lines) + "\n")
    assert read_history(folder / "journeys.jsonl") == lines
    [report] = load_trends(folder)
    assert report.scenario == "journeys"
    assert [s.endpoint for s in report.series if s.metric == "p95"] == ["GET /users/me", "POST /auth/login"]

    (folder / "auth.jsonl").write_text(lines[0].model_dump_json() + "\n{not json\n")
    with pytest.raises(DataError, match=r"auth\.jsonl:2 is not a valid history line"):
        load_trends(folder, ["auth"])
    with pytest.raises(DataError, match="no history"):
        load_trends(tmp_path)


def test_short_series_are_left_alone() -> None:
    assert trend_report("journeys", history(np.array([20.0, 40.0, 20.0]), seed=0)).change_points == []
