"""Benchmark: wall time per A/B pair through the process target and the compose target, side by side.

Run from the project root (a Docker engine and compose for the compose side; scripts/setup-docker.sh):
    python benchmarks/ab_pair_time.py [--pairs 4] [--rounds 2] [--scenario journeys] [--profile pr]
Each round runs `perfci run --ab HEAD` once per target with the same scenario, profile and pair count,
the targets' order alternating between rounds (so a machine that gets busier or quieter over the run does
not land on one target). From perfci's own progress lines it times the boot (start to the first pair) and
each pair (one pair line to the next; the last pair ends at the summary), and prints per target the median
pair time, the boots, and the ratio compose / process, with the machine's load average before and after
(the figures are only comparable on a quiet machine). The project's target: compose within 1.3x of process.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR_LINE = re.compile(r"perfci: \[\d+/\d+\] \S+ .*(?:pair|trial) (\d+)/(\d+)")


@dataclass(frozen=True)
class Timing:
    target: str
    boot_s: float
    pair_s: list[float]  # one pair's start to the next's: every pair but the last
    last_s: float  # the last pair, the tear-down and the analysis
    total_s: float
    exit_code: int


def timed_run(target: str, args: argparse.Namespace, runs_dir: Path) -> Timing:
    command = [
        str(Path(sys.executable).with_name("perfci")), "run", "--ab", args.ref, "--target", target,
        "--scenario", args.scenario, "--profile", args.profile, "--trials", str(args.pairs),
        "--no-progress", "--runs-dir", str(runs_dir), "--label", f"bench-{target}",
    ]  # fmt: skip
    started = time.monotonic()
    pair_starts: dict[int, float] = {}
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            now = time.monotonic()
            if args.verbose:
                print(f"  {now - started:7.1f}s {line.rstrip()}", file=sys.stderr)
            match = PAIR_LINE.search(line)
            if match:
                pair_starts.setdefault(int(match.group(1)), now)  # interleaved pairs print two lines each
        code = proc.wait()
    total = time.monotonic() - started
    if code not in (0, 1) or len(pair_starts) < 2:
        raise SystemExit(f"{target}: perfci exited with {code}; rerun with --verbose to see why")
    marks = [pair_starts[i] for i in sorted(pair_starts)]
    pairs = [b - a for a, b in itertools.pairwise(marks)]
    return Timing(target, marks[0] - started, pairs, started + total - marks[-1], total, code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="pairs per run, at least 2 (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per target, alternating (default 2)")
    parser.add_argument("--scenario", default="journeys")
    parser.add_argument("--profile", default="pr")
    parser.add_argument("--ref", default="HEAD", help="the base arm's git ref (default HEAD)")
    parser.add_argument("--verbose", action="store_true", help="echo perfci's lines with timestamps")
    args = parser.parse_args()

    load_before = os.getloadavg()
    timings: dict[str, list[Timing]] = {"process": [], "compose": []}
    with tempfile.TemporaryDirectory(prefix="perfci-bench-") as scratch:
        for round_index in range(args.rounds):
            order = ["process", "compose"] if round_index % 2 == 0 else ["compose", "process"]
            for target in order:
                timing = timed_run(target, args, Path(scratch))
                timings[target].append(timing)
                pairs = ", ".join(f"{p:.1f}" for p in timing.pair_s)
                print(f"round {round_index + 1} {target:8s} boot {timing.boot_s:5.1f} s, pairs [{pairs}] s, "
                      f"last pair + tear-down {timing.last_s:.1f} s, run {timing.total_s:.1f} s")  # fmt: skip
    load_after = os.getloadavg()

    print(f"\n{args.scenario}, profile {args.profile}, {args.pairs} pairs x {args.rounds} runs per target, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    medians = {}
    for target, runs in timings.items():
        pairs = [p for t in runs for p in t.pair_s]
        medians[target] = statistics.median(pairs)
        boots = ", ".join(f"{t.boot_s:.1f}" for t in runs)
        print(f"  {target:8s} per pair: median {medians[target]:5.1f} s (min {min(pairs):.1f}, max {max(pairs):.1f}), "
              f"boot [{boots}] s")  # fmt: skip
    ratio = medians["compose"] / medians["process"]
    verdict = "within" if ratio <= 1.3 else "outside"
    print(f"  compose / process per pair: {ratio:.2f}x ({verdict} the 1.3x target)")
    print(f"  load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
