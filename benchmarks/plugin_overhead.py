"""What the raw-sample recorder costs Locust at its peak: requests/s against /healthz with and without it.

One Locust process, FastHttpUser without wait, ~30 users; runs alternate (plain, recorded, plain, ...) so
drift on a shared machine hits both alike. Prints each run, both medians and the cost in percent.
Run: python benchmarks/plugin_overhead.py [--runs 3] [--seconds 8] [--users 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from perfci.measure.load import PLUGIN_FILE
from perfci.measure.locust_plugin import SAMPLES_DIR_ENV
from perfci.targets.process import ProcessSpec, process_target

REPO = Path(__file__).resolve().parents[1]
WARMUP_S = 2.0  # excluded: spawning and the first connections
LOCUSTFILE = """
from locust import FastHttpUser, task


class Peak(FastHttpUser):
    @task
    def health(self):
        self.client.get("/healthz")
"""


def requests_per_s(history_file: Path) -> float:
    """Steady-state rate: requests after the warm-up over the time they took (Locust's per-second history)."""
    rows = [line.split(",") for line in history_file.read_text(encoding="utf-8").splitlines()]
    header = rows[0]
    body = [r for r in rows[1:] if r[header.index("Name")] == "Aggregated"]
    stamp, total = header.index("Timestamp"), header.index("Total Request Count")
    start = int(body[0][stamp])
    steady = [(int(r[stamp]), int(r[total])) for r in body if int(r[stamp]) - start >= WARMUP_S]
    (t_a, n_a), (t_b, n_b) = steady[0], steady[-1]
    return (n_b - n_a) / (t_b - t_a) if t_b > t_a else 0.0


def one_run(base_url: str, workdir: Path, recorded: bool, seconds: float, users: int) -> float:
    workdir.mkdir(parents=True)
    locustfile = workdir / "peak.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    files = f"{locustfile},{PLUGIN_FILE}" if recorded else str(locustfile)
    env = {k: v for k, v in os.environ.items() if k != SAMPLES_DIR_ENV}
    if recorded:
        env[SAMPLES_DIR_ENV] = str(workdir / "parts")
    command = [
        sys.executable, "-m", "locust", "-f", files, "--headless", "--host", base_url,
        "--users", str(users), "--spawn-rate", str(users * 10), "--run-time", f"{seconds:g}s",
        "--stop-timeout", "2", "--only-summary", "--loglevel", "WARNING",
        "--csv", "stats", "--csv-full-history", "--json-file", "totals",
    ]  # fmt: skip
    subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True, timeout=seconds + 60)
    rate = requests_per_s(workdir / "stats_stats_history.csv")
    if recorded:
        total = sum(int(e["num_requests"]) for e in json.loads((workdir / "totals.json").read_text()))
        kept = sum(1 for _ in (workdir / "parts").glob("part-*.parquet"))
        print(f"  recorded run: {total} requests in Locust's totals, {kept} part files", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perfci-overhead-") as tmp:
        spec = ProcessSpec(service_dir=REPO / "service")
        with process_target(spec, Path(tmp) / "service") as target:
            rates: dict[bool, list[float]] = {False: [], True: []}
            for run in range(args.runs):
                for recorded in (False, True) if run % 2 == 0 else (True, False):
                    rate = one_run(target.base_url, Path(tmp) / f"{run}-{recorded}", recorded, args.seconds, args.users)
                    rates[recorded].append(rate)
                    print(
                        f"run {run + 1} {'with' if recorded else 'without'} plugin: {rate:,.0f} requests/s", flush=True
                    )
    plain, with_plugin = statistics.median(rates[False]), statistics.median(rates[True])
    cost = 100.0 * (plain - with_plugin) / plain
    print(f"median without plugin: {plain:,.0f} requests/s")
    print(f"median with plugin:    {with_plugin:,.0f} requests/s")
    print(f"cost of recording:     {cost:+.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()
