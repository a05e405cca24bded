"""Concurrent arms are measured over one wall-clock window, whatever moment each Locust started."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from perfci.errors import LoadError
from perfci.measure.load import common_window
from perfci.model import SAMPLE_COLUMNS, Arm, TrialInfo
from perfci.rundir import TRIAL_FILE, read_trial_info, write_model

T0 = 1_800_000_000.0


def _trial(tmp_path: Path, arm: Arm, t0: float, latency_ms: float) -> tuple[TrialInfo, pd.DataFrame, Path]:
    """A trial with one request every 10 ms from its own t0 for 10 s (2 s warm-up + 8 s window)."""
    directory = tmp_path / arm
    directory.mkdir()
    count = 1000
    samples = pd.DataFrame(
        {
            "start_s": [i * 0.01 for i in range(count)],
            "endpoint": ["GET /users/me"] * count,
            "latency_ms": [latency_ms] * count,
            "status": [200] * count,
            "ok": [True] * count,
            "bytes": [10] * count,
            "error": [None] * count,
            "lag_ms": [0.0] * count,
        }
    ).astype(SAMPLE_COLUMNS)
    info = TrialInfo(
        scenario="journeys",
        arm=arm,
        index=0,
        started_at=datetime.fromtimestamp(t0, UTC),
        warmup_s=2,
        duration_s=8,
        t0_epoch=t0,
        window_epoch=(t0 + 2, t0 + 10),
        users=8,
        achieved_rps=100.0,
        locust_exit_codes=[0],
        endpoints={},
    )
    write_model(directory / TRIAL_FILE, info)
    return info, samples, directory


def test_both_arms_get_the_later_start_and_the_earlier_end(tmp_path: Path) -> None:
    base = _trial(tmp_path, "base", T0, 2.0)
    candidate = _trial(tmp_path, "candidate", T0 + 0.5, 3.0)  # started half a second later

    aligned = common_window({"base": base, "candidate": candidate})

    for arm, (info, window) in aligned.items():
        assert info.window_epoch == (T0 + 2.5, T0 + 10.0)
        assert info.duration_s == pytest.approx(7.5)
        assert len(window) == 750  # requests every 10 ms over 7.5 s
        assert info.endpoints["GET /users/me"].n == 750
        assert info.achieved_rps == pytest.approx(100.0)
        assert read_trial_info(tmp_path / arm) == info  # trial.json says which window was measured
    assert aligned["base"][0].t0_epoch == T0
    assert aligned["candidate"][0].t0_epoch == T0 + 0.5
    # In each arm's own clock the window starts at a different offset: 2.5 s for base, 2.0 s for candidate.
    assert aligned["base"][1]["start_s"].min() == pytest.approx(2.5)
    assert aligned["candidate"][1]["start_s"].min() == pytest.approx(2.0)


def test_arms_started_further_apart_than_the_window_are_a_load_error(tmp_path: Path) -> None:
    base = _trial(tmp_path, "base", T0, 2.0)
    candidate = _trial(tmp_path, "candidate", T0 + 9.0, 2.0)

    with pytest.raises(LoadError, match=r"started 9\.0 s apart"):
        common_window({"base": base, "candidate": candidate})
