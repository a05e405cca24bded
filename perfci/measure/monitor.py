"""Watches resources during a trial: CPU and memory of the service and of Locust, PostgreSQL counters."""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import psutil

from perfci.model import DatabaseCounters, QueryStat, ResourcePeak
from perfci.targets.base import Target

SAMPLE_INTERVAL_S = 0.5
# Every resource sample is named by its role, whatever the target: a report then has one row per role and
# arm, not one per container or process of every trial.
SERVICE, DATABASE, LOCUST = "service", "database", "locust"
# A container name from before roles were recorded: `<project>_app_1` (compose v1) or `<project>-db-1` (v2).
_LEGACY_CONTAINER = re.compile(r"^perfci-[0-9a-f]+[-_](?P<service>app|db)[-_]\d+$")
COUNTER_COLUMNS = (
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "deadlocks",
    "temp_bytes",
)
_DOCKER_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


@dataclass
class _Tree:
    """A root process and its children, with psutil's CPU counters primed so each read is a delta."""

    source: str
    roots: list[psutil.Process]
    known: dict[int, psutil.Process] = field(default_factory=dict)

    def sample(self) -> tuple[float, float]:
        cpu = rss = 0.0
        alive: dict[int, psutil.Process] = {}
        for root in self.roots:
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in members:
                proc = self.known.get(process.pid, process)
                try:
                    cpu += proc.cpu_percent(None)  # the first read of a new process is 0: primed here
                    rss += proc.memory_info().rss
                    alive[proc.pid] = proc
                except psutil.Error:
                    continue
        self.known = alive
        return cpu, rss / 1024**2


class ResourceMonitor:
    """Samples in a thread until stopped; `frame()` has columns t_s, source, cpu_percent, rss_mb."""

    def __init__(self, target: Target, locust_pids: Sequence[int] = (), interval_s: float = SAMPLE_INTERVAL_S):
        self.target = target
        self.interval_s = interval_s
        self.rows: list[tuple[float, str, float, float]] = []
        self.trees = [_tree(SERVICE, target.pids)] if target.pids else []
        self.locust = _tree(LOCUST, locust_pids)
        # Containers whose processes this host sees are sampled like local processes: the same figures as
        # the process target's, at no cost. `docker stats` (two seconds and a process per call, CPU that the
        # service would otherwise get) only for the rest, e.g. an engine on another host.
        self.containers: list[str] = []
        for container, pid in container_pids(target.containers).items():
            tree = _tree(target.container_roles.get(container, container), [pid] if pid else [])
            if tree.roots:
                self.trees.append(tree)
            else:
                self.containers.append(container)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perfci-monitor", daemon=True)
        self.t0 = time.time()

    def start(self) -> None:
        self.t0 = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time() - self.t0
            for tree in [*self.trees, self.locust]:
                cpu, rss = tree.sample()
                self.rows.append((now, tree.source, cpu, rss))
            if self.containers:
                for container, cpu, rss in docker_stats(self.containers):
                    role = self.target.container_roles.get(container, container)
                    self.rows.append((time.time() - self.t0, role, cpu, rss))
            self._stop.wait(self.interval_s)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["t_s", "source", "cpu_percent", "rss_mb"])


def _processes(pids: Sequence[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _tree(source: str, pids: Sequence[int]) -> _Tree:
    return _Tree(source, _processes(pids))


_SIZE = re.compile(r"^\s*([0-9.]+)\s*([A-Za-z]*)\s*$")


def _bytes(text: str) -> float:
    """`12.5MiB` -> bytes, as `docker stats` prints memory."""
    match = _SIZE.match(text)
    return float(match.group(1)) * _DOCKER_UNITS.get(match.group(2), 1) if match else 0.0


def container_pids(containers: Sequence[str]) -> dict[str, int]:
    """Container -> the host pid of its main process (0 when not running or docker does not answer)."""
    if not containers:
        return {}
    try:
        result = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", *containers],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return dict.fromkeys(containers, 0)
    pids = [int(line) if line.strip().isdigit() else 0 for line in result.stdout.splitlines()]
    if result.returncode != 0 or len(pids) != len(containers):
        return dict.fromkeys(containers, 0)
    return dict(zip(containers, pids, strict=True))


def role_of(source: str) -> str:
    """The role of a resource source: itself, or for a container name of an older run, its role."""
    match = _LEGACY_CONTAINER.match(source)
    if match is None:
        return source
    return SERVICE if match.group("service") == "app" else DATABASE


def docker_stats(containers: Sequence[str]) -> list[tuple[str, float, float]]:
    """(container as given, CPU %, memory MB) per container; empty when docker does not answer in time."""
    try:
        result = subprocess.run(
            # {{.Container}} is the name or id exactly as passed, so that the caller can look it up.
            ["docker", "stats", "--no-stream", "--format", "{{.Container}}\t{{.CPUPerc}}\t{{.MemUsage}}", *containers],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = []
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        name, cpu, memory = parts
        with contextlib.suppress(ValueError):
            rows.append((name, float(cpu.rstrip("%")), _bytes(memory.split("/")[0].strip()) / 1024**2))
    return rows


def peaks(
    frame: pd.DataFrame, start_s: float = -math.inf, end_s: float = math.inf, *, decimals: int | None = 1
) -> list[ResourcePeak]:
    """Per source the peak and mean CPU and the peak memory inside [start, end), rounded to `decimals`
    (trial.json keeps one; a comparison sums trials first and rounds nothing: None)."""
    window = frame[(frame["t_s"] >= start_s) & (frame["t_s"] < end_s)]

    def figure(value: float) -> float:
        return round(value, decimals) if decimals is not None else value

    return [
        ResourcePeak(
            source=str(source),
            cpu_percent_peak=figure(float(group["cpu_percent"].max())),
            cpu_percent_mean=figure(float(group["cpu_percent"].mean())),
            rss_mb_peak=figure(float(group["rss_mb"].max())),
        )
        for source, group in window.groupby("source", sort=True, observed=True)
    ]


# ----------------------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------------------


def _connect(database_url: str) -> object | None:
    import psycopg

    try:
        return psycopg.connect(database_url.replace("+asyncpg", ""), autocommit=True, connect_timeout=5)
    except psycopg.Error:
        return None


def database_snapshot(database_url: str) -> dict[str, object] | None:
    """pg_stat_database counters of the target's database and pg_stat_statements rows when available."""
    import psycopg

    connection = _connect(database_url)
    if connection is None:
        return None
    with connection as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            # Built from the constant column list above, never from input.
            f"SELECT {', '.join(COUNTER_COLUMNS)} FROM pg_stat_database WHERE datname = current_database()"  # noqa: S608
        ).fetchone()
        counters = dict(zip(COUNTER_COLUMNS, row or (0,) * len(COUNTER_COLUMNS), strict=True))
        statements: dict[str, tuple[int, float]] = {}
        try:
            for query, calls, total in conn.execute(
                "SELECT query, calls, total_exec_time FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall():
                statements[str(query)] = (int(calls), float(total))
        except psycopg.Error:
            pass  # the extension is not loaded on this server: counters only
    return {"counters": counters, "statements": statements}


def database_delta(
    before: dict[str, object] | None, after: dict[str, object] | None, top: int = 10
) -> DatabaseCounters | None:
    if before is None or after is None:
        return None
    b_counters: dict[str, int] = before["counters"]  # type: ignore[assignment]
    a_counters: dict[str, int] = after["counters"]  # type: ignore[assignment]
    b_statements: dict[str, tuple[int, float]] = before["statements"]  # type: ignore[assignment]
    a_statements: dict[str, tuple[int, float]] = after["statements"]  # type: ignore[assignment]
    queries = []
    for query, (calls, total) in a_statements.items():
        calls0, total0 = b_statements.get(query, (0, 0.0))
        if calls > calls0:
            spent = total - total0
            count = calls - calls0
            queries.append(QueryStat(query=query[:500], calls=count, mean_ms=spent / count, total_ms=spent))
    queries.sort(key=lambda q: q.total_ms, reverse=True)
    deltas = {k: int(a_counters.get(k, 0) or 0) - int(b_counters.get(k, 0) or 0) for k in COUNTER_COLUMNS}
    return DatabaseCounters(**deltas, top_queries=queries[:top])
