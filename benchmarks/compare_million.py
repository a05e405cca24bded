"""Benchmark: a million raw samples -> per-trial figures -> an A/B comparison, with wall times (target < 2 s).

Run from the project root with perfci importable (pip install -e ., or PYTHONPATH=.):
    python benchmarks/compare_million.py [--samples 1000000] [--pairs 5] [--endpoints 8]
Synthetic samples in the Parquet layout of perfci.model.SAMPLE_COLUMNS are written to a temporary folder
first (not timed); the timed part is what a run does after its trials: read, summarise, compare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from perfci.summarise import endpoint_stats, histogram, measured_window

from perfci.analysis.analyse import compare_scenario
from perfci.model import SAMPLE_COLUMNS, StatsSettings

WARMUP_S, DURATION_S = 2.0, 30.0


def synthetic_trial(rng: np.random.Generator, rows: int, endpoints: list[str], slowdown: float) -> pd.DataFrame:
    which = rng.integers(0, len(endpoints), rows)
    centre = np.array([5.0 * (i + 1) for i in range(len(endpoints))])[which]
    latency = centre * rng.lognormal(0.0, 0.4, rows) * np.where(which == 0, slowdown, 1.0)
    ok = rng.random(rows) > 0.001
    frame = pd.DataFrame(
        {
            "start_s": np.sort(rng.uniform(0, WARMUP_S + DURATION_S, rows)),
            "endpoint": pd.Series(np.array(endpoints)[which]),
            "latency_ms": latency,
            "status": np.where(ok, 200, 500),
            "ok": ok,
            "bytes": rng.integers(100, 5000, rows),
            "error": pd.Series(np.where(ok, None, "HTTP 500")),
            "lag_ms": np.zeros(rows),
        }
    )
    return frame.astype(SAMPLE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--endpoints", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    endpoints = [f"GET /resource{i}/{{id}}" for i in range(args.endpoints)]
    rows = args.samples // (2 * args.pairs)
    with tempfile.TemporaryDirectory() as folder:
        paths: dict[str, list[Path]] = {"base": [], "candidate": []}
        for arm, slowdown in (("base", 1.0), ("candidate", 1.15)):
            for index in range(args.pairs):
                path = Path(folder) / f"{arm}-{index}.parquet"
                synthetic_trial(rng, rows, endpoints, slowdown).to_parquet(path, index=False)
                paths[arm].append(path)

        started = time.perf_counter()
        frames = {arm: [pd.read_parquet(p) for p in arm_paths] for arm, arm_paths in paths.items()}
        read_s = time.perf_counter() - started

        started = time.perf_counter()
        windows = {
            arm: [measured_window(f, WARMUP_S, DURATION_S) for f in arm_frames] for arm, arm_frames in frames.items()
        }
        trials = {arm: [endpoint_stats(w, DURATION_S) for w in arm_windows] for arm, arm_windows in windows.items()}
        summarise_s = time.perf_counter() - started

        started = time.perf_counter()
        histograms = {
            arm: {str(e): histogram(g["latency_ms"]) for e, g in pd.concat(w).groupby("endpoint", observed=True)}
            for arm, w in windows.items()
        }
        histogram_s = time.perf_counter() - started

        started = time.perf_counter()
        result = compare_scenario(
            "bench",
            trials["base"],
            trials["candidate"],
            mode="ab",
            settings=StatsSettings(),
            slos=[],
            base_histograms=histograms["base"],
            candidate_histograms=histograms["candidate"],
        )
        compare_s = time.perf_counter() - started

    total = read_s + summarise_s + histogram_s + compare_s
    samples = sum(len(f) for arm_frames in frames.values() for f in arm_frames)
    print(f"samples: {samples:,} in {2 * args.pairs} trials, {args.endpoints} endpoints")
    print(f"read parquet: {read_s:.3f} s")
    print(f"summarise (window + per-endpoint figures): {summarise_s:.3f} s")
    print(f"histograms: {histogram_s:.3f} s")
    print(f"compare (tests, Holm, verdicts, noise floor): {compare_s:.3f} s")
    print(f"total: {total:.3f} s (target < 2 s)")
    verdicts = {e.endpoint: e.verdict for e in result.endpoints}
    others = sorted({v for e, v in verdicts.items() if e != endpoints[0]})
    print(f"verdicts: {verdicts[endpoints[0]]} on {endpoints[0]} (slowed by 15 %), others: {others}")


if __name__ == "__main__":
    main()
