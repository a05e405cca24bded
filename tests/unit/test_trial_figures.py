"""Per-endpoint figures from raw samples, checked against numpy on the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfci.model import SAMPLE_COLUMNS
from perfci.trial_figures import HISTOGRAM_EDGES_MS, endpoint_stats, histogram, measured_window


def samples(rows: list[tuple[float, str, float, bool, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "start_s": [r[0] for r in rows],
            "endpoint": [r[1] for r in rows],
            "latency_ms": [r[2] for r in rows],
            "status": [200 if r[3] else 0 for r in rows],
            "ok": [r[3] for r in rows],
            "bytes": [10] * len(rows),
            "error": [r[4] for r in rows],
            "lag_ms": [0.0] * len(rows),
        }
    )
    return frame.astype(SAMPLE_COLUMNS)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=60_000.0), min_size=1, max_size=300))
def test_percentiles_and_mean_equal_numpy(latencies: list[float]) -> None:
    frame = samples([(1.0, "GET /users", x, True, None) for x in latencies])
    stats = endpoint_stats(frame, duration_s=2.0)["GET /users"]
    expected = np.percentile(np.array(latencies), [50, 90, 95, 99])
    assert [stats.p50, stats.p90, stats.p95, stats.p99] == pytest.approx(list(expected), rel=1e-12)
    assert stats.mean == pytest.approx(float(np.mean(latencies)), rel=1e-12)
    assert stats.n == len(latencies)
    assert stats.rps == pytest.approx(len(latencies) / 2.0)


def test_endpoints_are_summarised_separately() -> None:
    frame = samples(
        [(1.0, "GET /a", 10.0, True, None), (1.0, "GET /b", 99.0, True, None), (1.5, "GET /a", 30.0, True, None)]
    )
    stats = endpoint_stats(frame, 1.0)
    assert set(stats) == {"GET /a", "GET /b"}
    assert stats["GET /a"].p50 == 20.0
    assert stats["GET /b"].n == 1


def test_window_includes_its_start_and_excludes_its_end() -> None:
    frame = samples([(t, "GET /a", 1.0, True, None) for t in (0.0, 1.999, 2.0, 3.0, 6.999, 7.0, 8.0)])
    window = measured_window(frame, warmup_s=2.0, duration_s=5.0)
    assert list(window["start_s"]) == [2.0, 3.0, 6.999]


def test_errors_are_counted_by_kind_and_a_missing_text_is_unknown() -> None:
    frame = samples(
        [
            (1.0, "POST /auth/login", 5.0, True, None),
            (1.0, "POST /auth/login", 5.0, False, "ConnectionRefusedError: [Errno 111] refused"),
            (1.1, "POST /auth/login", 5.0, False, "ConnectionRefusedError: [Errno 111] refused"),
            (1.2, "POST /auth/login", 5.0, False, "CatchResponseError: HTTP 500"),
            (1.3, "POST /auth/login", 5.0, False, None),
        ]
    )
    stats = endpoint_stats(frame, 1.0)["POST /auth/login"]
    assert stats.errors == 4
    assert stats.error_kinds == {
        "ConnectionRefusedError: [Errno 111] refused": 2,
        "CatchResponseError: HTTP 500": 1,
        "unknown error": 1,
    }


def test_no_samples_no_endpoints() -> None:
    assert endpoint_stats(samples([]), 3.0) == {}


def test_histogram_matches_numpy_and_clips_outliers_into_the_end_buckets() -> None:
    edges = np.asarray(HISTOGRAM_EDGES_MS)
    assert edges[0] == pytest.approx(0.1)
    assert edges[-1] == pytest.approx(100_000.0)
    values = [0.001, 0.1, 0.5, 1.0, 12.3, 250.0, 99_999.0, 100_000.0, 5e6]
    result = histogram(values)
    assert sum(result.counts) == len(values)
    assert len(result.counts) == len(result.edges_ms) - 1 == 120
    assert result.counts[0] == 2  # 0.001 clipped up to 0.1, and 0.1 itself: the first bucket is closed below
    assert result.counts[-1] == 3  # 99 999, 100 000 (numpy's last bucket is closed) and 5e6 clipped down
    inside = [v for v in values if edges[0] <= v <= edges[-1]]
    counts, _ = np.histogram(inside, bins=edges)
    assert sum(counts) == len(inside)
    bucket_of_12_3 = int(np.searchsorted(edges, 12.3, side="right")) - 1
    assert result.counts[bucket_of_12_3] == 1
