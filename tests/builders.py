"""Shared test helpers: records read back and models built the way the tests need them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perfci.model import TrialInfo
from perfci.rundir import read_samples, read_trial_info


def read_trial(trial_dir: Path) -> tuple[TrialInfo, pd.DataFrame]:
    """A trial's record and its raw samples, as `load.run_trial` wrote them (the samples must exist)."""
    samples = read_samples(trial_dir)
    assert samples is not None, f"{trial_dir} holds no samples"
    return read_trial_info(trial_dir), samples
