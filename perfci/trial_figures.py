"""Per-endpoint figures of one trial, computed from its raw samples (never from Locust's rounded stats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from perfci.model import EndpointStats, Histogram

# Log-spaced bucket edges from 0.1 ms to 100 s: 20 buckets per decade keeps a histogram under 2 KB
# while resolving a 12 % difference, finer than any minimum effect we judge.
HISTOGRAM_EDGES_MS: tuple[float, ...] = tuple(float(x) for x in np.logspace(-1, 5, 6 * 20 + 1))


def measured_window(samples: pd.DataFrame, warmup_s: float, duration_s: float) -> pd.DataFrame:
    """The samples whose request started inside the measured window [warmup, warmup + duration)."""
    start = samples["start_s"]
    return samples[(start >= warmup_s) & (start < warmup_s + duration_s)]


def endpoint_stats(window: pd.DataFrame, duration_s: float) -> dict[str, EndpointStats]:
    """Count, errors, percentiles (numpy's linear interpolation), mean and rate per endpoint."""
    result: dict[str, EndpointStats] = {}
    for endpoint, group in window.groupby("endpoint", sort=True, observed=True):
        latency = group["latency_ms"].to_numpy(dtype=np.float64)
        p50, p90, p95, p99 = np.percentile(latency, [50, 90, 95, 99])
        failed = group[~group["ok"].astype(bool)]
        kinds = failed["error"].fillna("unknown error").value_counts()
        result[str(endpoint)] = EndpointStats(
            n=len(group),
            errors=len(failed),
            p50=float(p50),
            p90=float(p90),
            p95=float(p95),
            p99=float(p99),
            mean=float(latency.mean()),
            rps=len(group) / duration_s if duration_s > 0 else 0.0,
            error_kinds={str(k): int(v) for k, v in kinds.items()},
        )
    return result


def histogram(latency_ms: npt.ArrayLike) -> Histogram:
    """A compact histogram on the fixed log-spaced edges; values outside them land in the end buckets."""
    edges = np.asarray(HISTOGRAM_EDGES_MS)
    clipped = np.clip(np.asarray(latency_ms, dtype=np.float64), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return Histogram(edges_ms=[round(float(e), 4) for e in edges], counts=[int(c) for c in counts])


def pooled_histograms(windows: Sequence[pd.DataFrame]) -> dict[str, Histogram]:
    """Per endpoint, the histogram of every request of these trials' measured windows together."""
    pooled = pd.concat(windows, ignore_index=True)
    return {str(e): histogram(g["latency_ms"]) for e, g in pooled.groupby("endpoint", observed=True)}
