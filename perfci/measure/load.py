"""Runs one trial: a headless Locust subprocess (or master + workers), bounded in time, every sample kept.

Over 400 lines because every way a trial can end (Locust crashing or hanging, the service exiting or
refusing connections, Ctrl-C, a missed arrival rate) is decided here, where the processes are.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from perfci.errors import LoadError, TargetExitedError
from perfci.lifetime import die_with_parent
from perfci.measure import locust_plugin
from perfci.measure.distributed import remote_workers
from perfci.measure.monitor import ResourceMonitor, database_delta, database_snapshot, peaks
from perfci.model import SAMPLE_COLUMNS, Arm, DatabaseCounters, TrialInfo
from perfci.rundir import (
    LOCUST_LOG,
    LOCUST_STATS,
    PARTS_DIR,
    SAMPLES_FILE,
    write_database_counters,
    write_resources,
    write_samples,
    write_trial_info,
)
from perfci.targets.base import Target
from perfci.targets.health import free_port
from perfci.trial_figures import endpoint_stats, measured_window

PLUGIN_FILE = Path(locust_plugin.__file__).resolve()
# Locust needs a few seconds to import, spawn and stop beyond --run-time; past this margin it is hung.
OVERRUN_MARGIN_S = 60.0
LOCUST_CPU_LIMIT = 90.0  # percent of one core: above it the load generator, not the service, sets the pace
MIN_ARRIVAL_SHARE = 0.95
# Poisson arrivals: over a short window the count itself varies by sqrt(expected); a miss must exceed
# this many standard deviations too, or a 4-s trial at 40/s would be flagged about one time in four.
ARRIVAL_NOISE_SIGMAS = 3.0
MIN_REFUSED_TAIL = 20  # refused connections in a row that end a trial: the service is gone
QUIT_GRACE_S = 3.0  # a Locust ended early gets this long to write its last samples


@dataclass(frozen=True)
class TrialSpec:
    scenario: str
    locustfile: Path
    arm: Arm
    index: int
    users: int
    spawn_rate: float
    warmup_s: float
    duration_s: float
    stop_timeout_s: float = 5.0
    workers: int = 0  # 0 = one local Locust process; N = Locust's master + N workers
    target_rps: float | None = None  # open-model scenarios: offered arrivals per second
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    scenario: str
    arm: Arm
    index: int
    elapsed_s: float
    total_s: float
    requests: int
    rps: float
    p95_ms: float | None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class MeasuredTrial:
    """What one trial measured, held in memory as it was written to the trial's folder."""

    info: TrialInfo
    samples: pd.DataFrame  # every request (model.SAMPLE_COLUMNS), warm-up included
    resources: pd.DataFrame  # the whole trial's resource samples, on the samples' clock
    database: DatabaseCounters | None


def _locust_base(spec: TrialSpec) -> list[str]:
    """Locust with the scenario and perfci's recorder loaded: what every process of a trial runs."""
    return [sys.executable, "-m", "locust", "-f", f"{spec.locustfile},{PLUGIN_FILE}", "--loglevel", "WARNING"]


def locust_command(spec: TrialSpec, target: Target, role: Sequence[str] = ()) -> list[str]:
    run_time = math.ceil(spec.warmup_s + spec.duration_s)
    return [
        *_locust_base(spec),
        "--headless",
        "--host",
        target.base_url,
        "--users",
        str(spec.users),
        "--spawn-rate",
        f"{spec.spawn_rate:g}",
        "--run-time",
        f"{run_time}s",
        "--stop-timeout",
        f"{spec.stop_timeout_s:g}",
        "--exit-code-on-error",
        "0",  # failed requests are data; a non-zero exit now means the load generator itself broke
        "--only-summary",
        "--json-file",
        LOCUST_STATS,
        *role,
    ]


def _environment(spec: TrialSpec, samples_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **spec.extra_env,
        locust_plugin.SAMPLES_DIR_ENV: str(samples_dir),
        "PERFCI_USERS": str(spec.users),  # open-model scenarios share the arrival rate among the users
        "PYTHONUNBUFFERED": "1",
    }
    if spec.target_rps is not None:
        env["PERFCI_ARRIVAL_RATE"] = f"{spec.target_rps:g}"
    return env


def _start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (only prctl, which is async-signal-safe)
        )  # fmt: skip
    finally:
        handle.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _end(process: subprocess.Popen[bytes], grace_s: float = QUIT_GRACE_S) -> None:
    """SIGTERM first: Locust quits and the plugin writes the samples it still holds; then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    _kill(process)


def run_trial(
    spec: TrialSpec,
    target: Target,
    trial_dir: Path,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> TrialInfo:
    """Drive one trial and write samples, resources and trial.json into `trial_dir`; see `measure_trial`."""
    return measure_trial(spec, target, trial_dir, on_progress, stop).info


def measure_trial(
    spec: TrialSpec,
    target: Target,
    trial_dir: Path,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> MeasuredTrial:
    """Drive one trial, write samples, resources and trial.json into `trial_dir`, and keep them in memory.

    Every Locust process's exit code is checked; a crash is a LoadError raised after what was measured is
    on disk. A run that overruns its bound by OVERRUN_MARGIN_S is killed. Setting `stop` ends the trial
    early in the same way: a trial running in a thread cannot be interrupted by a signal, so the thread
    that got the signal sets it.
    """
    trial_dir.mkdir(parents=True, exist_ok=True)
    parts_dir = trial_dir / PARTS_DIR
    log = trial_dir / LOCUST_LOG
    processes = _launch(spec, target, _environment(spec, parts_dir), trial_dir, log)
    started_at = datetime.now(UTC)
    total_s = spec.warmup_s + spec.duration_s
    monitor = ResourceMonitor(target, [p.pid for p in processes])
    db_before = database_snapshot(target.database_url) if target.database_url else None
    monitor.start()
    interrupted: KeyboardInterrupt | None = None
    try:
        overran = not _wait(
            processes,
            spec,
            total_s,
            lambda: on_progress and on_progress(_progress(spec, parts_dir, total_s)),
            stop or threading.Event(),
            target.exit_code,
        )
    except KeyboardInterrupt as signal_received:
        # Ctrl-C or SIGTERM: what was measured until now is written below like any trial, then re-raised.
        interrupted, overran = signal_received, False
    finally:
        for process in processes:
            _end(process)
        monitor.stop()
    db_after = database_snapshot(target.database_url) if target.database_url else None

    samples, t0 = collect_samples(parts_dir)
    write_samples(trial_dir, samples)
    resources = monitor.frame()
    # Resource time counts from the monitor's start; shift it onto the samples' clock (the trial's t0).
    resources["t_s"] = resources["t_s"] + (monitor.t0 - t0 if t0 else 0.0)
    write_resources(trial_dir, resources)
    database = database_delta(db_before, db_after)
    if database is not None:
        write_database_counters(trial_dir, database)

    service_code = target.exit_code() if target.exit_code else None
    ending = _Ending(
        locust_codes=[p.returncode for p in processes],
        overran=overran,
        interrupted=interrupted,
        service_code=service_code,
        refused_from=refused_tail(samples) if service_code is None else None,
    )
    window = measured_window(samples, spec.warmup_s, spec.duration_s)
    window_epoch = (t0 + spec.warmup_s, t0 + spec.warmup_s + spec.duration_s) if t0 is not None else None
    resource_window = peaks(resources, spec.warmup_s, spec.warmup_s + spec.duration_s)
    locust_peak = next((r.cpu_percent_peak for r in resource_window if r.source == "locust"), None)
    locust_mean = next((r.cpu_percent_mean for r in resource_window if r.source == "locust"), None)
    achieved = len(window) / spec.duration_s if spec.duration_s > 0 else 0.0
    flags = _flags(spec, achieved, locust_mean, len(samples)) + ending.flags()
    info = TrialInfo(
        scenario=spec.scenario,
        arm=spec.arm,
        index=spec.index,
        started_at=started_at,
        warmup_s=spec.warmup_s,
        duration_s=spec.duration_s,
        t0_epoch=t0,
        window_epoch=window_epoch,
        users=spec.users,
        target_rps=spec.target_rps,
        achieved_rps=round(achieved, 3),
        locust_exit_codes=ending.locust_codes,
        locust_cpu_peak=locust_peak,
        flags=flags,
        endpoints=endpoint_stats(window, spec.duration_s),
    )
    write_trial_info(trial_dir, info)
    ending.raise_failure(spec, target, trial_dir)
    return MeasuredTrial(info, samples, resources, database)


@dataclass(frozen=True)
class _Ending:
    """How a trial ended, beyond its samples: each way but a clean end is raised once the trial is on disk."""

    locust_codes: list[int]
    overran: bool
    interrupted: KeyboardInterrupt | None
    service_code: int | None  # the service exited during the trial
    refused_from: float | None  # every connection from this time (s) to the end was refused

    def flags(self) -> list[str]:
        flags = []
        if self.service_code is not None:
            flags.append(f"the service exited during this trial (exit code {self.service_code})")
        if self.interrupted is not None:
            flags.append("interrupted: the trial was stopped before its end")
        if self.refused_from is not None:
            flags.append(f"every connection from {self.refused_from:.1f} s to the end was refused")
        return flags

    def raise_failure(self, spec: TrialSpec, target: Target, trial_dir: Path) -> None:
        log = trial_dir / LOCUST_LOG
        kept = f"its log is {log}; the samples measured until then are in {trial_dir / SAMPLES_FILE}"
        if self.interrupted is not None:
            raise self.interrupted
        if self.service_code is not None:
            raise service_exited(spec, self.service_code, target)
        if self.refused_from is not None:
            raise service_unreachable(spec, self.refused_from, target)
        if self.overran:
            raise LoadError(
                f"{spec.scenario} {spec.arm} trial {spec.index + 1}: Locust ran past its bound and was stopped",
                kept,
                log=log,
            )
        if any(code != 0 for code in self.locust_codes):
            raise LoadError(
                f"{spec.scenario} {spec.arm} trial {spec.index + 1}: the load generator exited with "
                f"{self.locust_codes}: " + _last_line(log),
                kept,
                log=log,
            )


def service_exited(spec: TrialSpec, code: int, target: Target) -> TargetExitedError:
    """The error of a service that died mid-trial: what follows (connection refusals) is not the change's doing."""
    log = target.log_paths[0] if target.log_paths else None
    return TargetExitedError(
        f"the service exited during trial {spec.index + 1} of scenario {spec.scenario} ({spec.arm} arm, "
        f"exit code {code}); log: {log or '(no log)'}",
        "this is an infrastructure failure, not a verdict on the change (exit code -9 is often the kernel's "
        "out-of-memory killer); read the log, then run again",
        log=log,
    )


def refused_tail(samples: pd.DataFrame) -> float | None:
    """When the trial ends with at least MIN_REFUSED_TAIL refused connections in a row, the time they began.

    A service perfci cannot watch (a url or container target) that dies shows up this way: every request
    after its death is refused. Those refusals say nothing about the change, so they must not be judged.
    """
    if len(samples) < MIN_REFUSED_TAIL:
        return None
    refused = (samples["status"] == 0) & samples["error"].fillna("").str.contains("refused", case=False)
    flags = refused.to_numpy()
    if not flags[-1]:
        return None
    accepted = (~flags).nonzero()[0]
    first = int(accepted[-1]) + 1 if len(accepted) else 0
    if len(flags) - first < MIN_REFUSED_TAIL:
        return None
    return float(samples["start_s"].iloc[first])


def service_unreachable(spec: TrialSpec, since_s: float, target: Target) -> TargetExitedError:
    log = target.log_paths[0] if target.log_paths else None
    return TargetExitedError(
        f"the service stopped accepting connections during trial {spec.index + 1} of scenario {spec.scenario} "
        f"({spec.arm} arm): every request from {since_s:.1f} s to the end was refused"
        + (f"; log: {log}" if log else ""),
        "this is an infrastructure failure, not a verdict on the change: the service or its host went away; "
        "check that it runs, then run again",
        log=log,
    )


def _launch(
    spec: TrialSpec, target: Target, env: dict[str, str], trial_dir: Path, log: Path
) -> list[subprocess.Popen[bytes]]:
    """One local Locust, or Locust's own master and N workers (never a home-made distribution).

    With remote workers configured (perfci.measure.distributed), the master also binds where they reach it and
    awaits them; they send their samples to it over Locust's messaging.
    """
    # Locust reads [tool.locust] from a pyproject.toml in its working directory: the trial dir has none.
    remote = remote_workers(os.environ)
    if spec.workers == 0 and remote.count == 0:
        return [_start(locust_command(spec, target), env, trial_dir, log)]
    port = remote.port_for(spec.arm) if remote.count else free_port()
    if remote.count:
        master = remote.master_args(spec.arm, spec.workers)
    else:
        master = ["--master", "--expect-workers", str(spec.workers), "--master-bind-port", str(port)]
    processes = [_start(locust_command(spec, target, master), env, trial_dir, log)]
    # Local workers reach the master on loopback unless it binds one address only.
    everywhere = ("0.0.0.0", "::")  # noqa: S104 - compared with, not bound to
    local_host = remote.master_host if remote.count and remote.master_host not in everywhere else "127.0.0.1"
    worker = ["--worker", "--master-host", local_host, "--master-port", str(port)]
    processes += [_start(_worker_command(spec, worker), env, trial_dir, log) for _ in range(spec.workers)]
    return processes


def _wait(
    processes: list[subprocess.Popen[bytes]],
    spec: TrialSpec,
    total_s: float,
    tick: Callable[[], object],
    stop: threading.Event,
    service_exit: Callable[[], int | None] | None = None,
) -> bool:
    """Wait for every process to exit, for `stop` or for the service to die; False when the run overran its
    bound (the caller kills what still runs)."""
    deadline = time.monotonic() + total_s + spec.stop_timeout_s + OVERRUN_MARGIN_S
    while any(p.poll() is None for p in processes):
        if time.monotonic() > deadline:
            return False
        if service_exit is not None and service_exit() is not None:
            return True  # every request from now on would be a refused connection: end the trial here
        tick()
        if stop.wait(0.5):
            return True  # the caller kills what still runs; the interruption is reported where it happened
    return True


def _worker_command(spec: TrialSpec, role: Sequence[str]) -> list[str]:
    return [*_locust_base(spec), *role]


def _flags(spec: TrialSpec, achieved: float, locust_cpu_mean: float | None, samples: int) -> list[str]:
    flags = []
    if locust_cpu_mean is not None and locust_cpu_mean > LOCUST_CPU_LIMIT * max(1, spec.workers):
        flags.append(
            f"unreliable: the load generator averaged {locust_cpu_mean:.0f} % CPU (limit {LOCUST_CPU_LIMIT:.0f} %)"
        )
    if spec.target_rps is not None and _missed_arrivals(achieved, spec.target_rps, spec.duration_s):
        flags.append(f"missed its arrival rate: {achieved:.1f} of {spec.target_rps:g} requests/s")
    if samples == 0:
        flags.append("no requests were recorded")
    return flags


def _missed_arrivals(achieved_rps: float, target_rps: float, duration_s: float) -> bool:
    """Fewer arrivals than MIN_ARRIVAL_SHARE of the target and more than Poisson noise can explain."""
    expected = target_rps * duration_s
    allowance = max((1.0 - MIN_ARRIVAL_SHARE) * expected, ARRIVAL_NOISE_SIGMAS * math.sqrt(expected))
    return achieved_rps * duration_s < expected - allowance


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:200] if lines else "(empty log)"


def collect_samples(parts_dir: Path) -> tuple[pd.DataFrame, float | None]:
    """Every process's part files merged, start times made relative to the trial's t0 (the first test start)."""
    parts = sorted(parts_dir.glob("part-*.csv")) if parts_dir.is_dir() else []
    frames = [read_part(p) for p in parts]
    starts = [float(p.read_text(encoding="utf-8")) for p in parts_dir.glob("start-*.txt")] if parts_dir.is_dir() else []
    if not frames:
        empty = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in SAMPLE_COLUMNS.items()})
        return empty, min(starts) if starts else None
    raw = pd.concat(frames, ignore_index=True)
    t0 = min(starts) if starts else float(raw["start_epoch"].min())
    samples = raw.drop(columns=["start_epoch"]).assign(start_s=raw["start_epoch"] - t0)
    samples = samples.sort_values("start_s", kind="stable").reset_index(drop=True)
    return samples[list(SAMPLE_COLUMNS)].astype(SAMPLE_COLUMNS), t0


# The plugin's CSV columns and their types; an empty field is a missing value (a request without error).
_PART_TYPES = {
    "start_epoch": pa.float64(),
    "endpoint": pa.string(),
    "latency_ms": pa.float64(),
    "status": pa.int32(),
    "ok": pa.bool_(),
    "bytes": pa.int64(),
    "error": pa.string(),
    "lag_ms": pa.float64(),
}


def read_part(path: Path) -> pd.DataFrame:
    options = pacsv.ConvertOptions(
        column_types=_PART_TYPES,
        include_columns=list(locust_plugin.PART_COLUMNS),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,  # an error text is never empty; only a bare empty field is None
    )
    frame: pd.DataFrame = pacsv.read_csv(path, convert_options=options).to_pandas()
    return frame


def _progress(spec: TrialSpec, parts_dir: Path, total_s: float) -> Progress:
    requests = 0
    rps = 0.0
    p95: float | None = None
    start: float | None = None
    for path in parts_dir.glob("progress-*.json") if parts_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        requests += int(data.get("requests", 0))
        rps += float(data.get("rps", 0.0))
        if data.get("p95_ms") is not None:
            p95 = max(p95 or 0.0, float(data["p95_ms"]))
        if data.get("test_start"):
            start = min(start or data["test_start"], data["test_start"])
    elapsed = time.time() - start if start else 0.0
    return Progress(spec.scenario, spec.arm, spec.index, min(elapsed, total_s), total_s, requests, rps, p95)


def common_window(
    trials: Mapping[Arm, tuple[TrialInfo, pd.DataFrame, Path]],
) -> dict[Arm, tuple[TrialInfo, pd.DataFrame]]:
    """Re-measure concurrent trials over one wall-clock window: the later t0 plus warm-up to the earlier end.

    Each arm's Locust starts a little apart from the other's; measured from its own start, each arm's
    window would cover a slightly different stretch of the host's life, and a swing at either edge would
    hit one arm only. Figures, rate and trial.json are rewritten for the common window.
    """
    infos = {arm: info for arm, (info, _, _) in trials.items()}
    if any(info.t0_epoch is None for info in infos.values()):
        raise LoadError("a concurrent trial recorded no start time", f"look at its {LOCUST_LOG}; it made no request")
    t0s = [info.t0_epoch for info in infos.values() if info.t0_epoch is not None]
    warmup = max(info.warmup_s for info in infos.values())
    start = max(t0s) + warmup
    end = min(t0 + warmup + info.duration_s for t0, info in zip(t0s, infos.values(), strict=True))
    if end <= start:
        raise LoadError(
            f"the concurrent arms started {max(t0s) - min(t0s):.1f} s apart, longer than their measured window",
            "the machine is overloaded: lower the users or run with --ab-schedule interleaved",
        )
    aligned: dict[Arm, tuple[TrialInfo, pd.DataFrame]] = {}
    for arm, (info, samples, directory) in trials.items():
        assert info.t0_epoch is not None
        offset = start - info.t0_epoch
        window = measured_window(samples, offset, end - start)
        updated = info.model_copy(
            update={
                "duration_s": round(end - start, 6),
                "window_epoch": (start, end),
                "achieved_rps": round(len(window) / (end - start), 3),
                "endpoints": endpoint_stats(window, end - start),
            }
        )
        write_trial_info(directory, updated)
        aligned[arm] = (updated, window[["start_s", "latency_ms", "endpoint"]])
    return aligned
