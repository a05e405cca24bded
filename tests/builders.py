"""Shared test helpers: records read back, models built the way the tests need them, and throwaway test
projects (git checkouts, [tool.perfci] tables) that measure this repository's user service."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfci.analysis.breaking_point import Step
from perfci.analysis.stats import FloatArray
from perfci.config import load_config
from perfci.model import Environment, HistoryLine, SloSpec, TrialInfo
from perfci.rundir import read_samples, read_trial_info
from perfci.targets.process import ProcessSpec
from perfci.targets.select import process_spec


def environment(**overrides: Any) -> Environment:
    """A testbed's environment: a 2-core Linux machine running the process target, unless overridden."""
    fields: dict[str, Any] = {
        "runner_os": "Linux",
        "cpu_model": "Test CPU",
        "cores": 2,
        "python": "3.11.9",
        "locust_version": "2.47.0",
        "perfci_version": "0.1.0",
        "target_kind": "process",
    }
    return Environment(**{**fields, **overrides})


def read_trial(trial_dir: Path) -> tuple[TrialInfo, pd.DataFrame]:
    """A trial's record and its raw samples, as `load.run_trial` wrote them (the samples must exist)."""
    samples = read_samples(trial_dir)
    assert samples is not None, f"{trial_dir} holds no samples"
    return read_trial_info(trial_dir), samples


# A step load with a known breaking point (breaking_point and its stress renderings).
STEP_S = 10.0
SLOS = [
    SloSpec(endpoint="GET /users/me", p95_ms=150),
    SloSpec(endpoint="POST /auth/login", p95_ms=500, error_rate=0.05),
    SloSpec(endpoint="GET /users/me", scenario="other", p95_ms=1),  # another scenario's: must not apply
]


def step_load(
    offered: Sequence[float],
    rps: Sequence[float],
    latency_ms: Sequence[float],
    error_rate: Sequence[float] | None = None,
    seed: int = 1,
) -> tuple[pd.DataFrame, list[Step]]:
    """Samples at the given rate per step, latencies lognormal around the given median, two endpoints."""
    rng = np.random.default_rng(seed)
    frames = []
    schedule = []
    for index, (load, rate, median) in enumerate(zip(offered, rps, latency_ms, strict=True)):
        start = index * STEP_S
        n = int(rate * STEP_S)
        starts = np.sort(rng.uniform(start, start + STEP_S, n))
        endpoint = np.where(rng.random(n) < 0.8, "GET /users/me", "POST /auth/login")
        latency = median * rng.lognormal(0.0, 0.25, n)
        failed = rng.random(n) < (error_rate[index] if error_rate else 0.0)
        frames.append(
            pd.DataFrame(
                {
                    "start_s": starts,
                    "endpoint": endpoint,
                    "latency_ms": latency,
                    "status": np.where(failed, 500, 200),
                    "ok": ~failed,
                    "bytes": 100,
                    "error": ["HTTP 500" if f else None for f in failed],
                    "lag_ms": 0.0,
                }
            )
        )
        schedule.append(Step(offered=load, start_s=start, end_s=start + STEP_S, settle_s=1.0))
    return pd.concat(frames, ignore_index=True), schedule


def cpu(schedule: list[Step], per_source: dict[str, Sequence[float]]) -> pd.DataFrame:
    rows = [
        {"t_s": step.start_s + t, "source": source, "cpu_percent": values[i], "rss_mb": 100.0}
        for source, values in per_source.items()
        for i, step in enumerate(schedule)
        for t in np.arange(0.5, STEP_S, 1.0)
    ]
    return pd.DataFrame(rows)


OFFERED = [4, 8, 16, 32, 64, 128]
RPS = [40, 80, 160, 300, 330, 335]  # grows, then stops growing at 64 -> 128 users
LATENCY = [10, 10, 11, 25, 180, 400]  # turns up at 32 users; the 150 ms SLO breaks at 64


# A history of main with a known step (trends and their renderings).
START = datetime(2025, 1, 1, tzinfo=UTC)


def history(levels: FloatArray, *, seed: int, noise: float = 0.05, scenario: str = "journeys") -> list[HistoryLine]:
    """One line per refresh: GET /users/me p95 follows `levels` with lognormal noise; login stays flat."""
    rng = np.random.default_rng(seed)
    return [
        HistoryLine(
            scenario=scenario,
            created_at=START + timedelta(days=i),
            git_commit=f"{i:040x}",
            endpoints={
                "GET /users/me": {
                    "p95": float(level * rng.lognormal(0, noise)),
                    "rps": 300.0 * rng.lognormal(0, noise),
                },
                "POST /auth/login": {"p95": float(200 * rng.lognormal(0, noise))},
            },
        )
        for i, level in enumerate(levels)
    ]


def step_at(index: int, size: float, n: int = 60) -> FloatArray:
    levels: FloatArray = np.r_[np.full(index, 20.0), np.full(n - index, 20.0 * (1 + size))]
    return levels


# A throwaway git project holding a copy of the service and the scenarios (A/B runs need a git history).
REPO = Path(__file__).resolve().parents[1]
_COPY_IGNORE = ("__pycache__", "*.egg-info", "*.sqlite3*")


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed author; its stdout, stripped."""
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=test@perfci.test", "-c", "user.name=perfci", *args],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


def git_project(root: Path, pyproject: str, *, gitignore: str, whole_service: bool = False) -> Path:
    """`root` as a committed project: the service (its package, or all of it but its tests), the
    scenarios, `pyproject` as its pyproject.toml and `gitignore` as its .gitignore."""
    if whole_service:
        shutil.copytree(REPO / "service", root / "service", ignore=shutil.ignore_patterns(*_COPY_IGNORE, "tests"))
    else:
        ignore = shutil.ignore_patterns(*_COPY_IGNORE)
        shutil.copytree(REPO / "service" / "userservice", root / "service" / "userservice", ignore=ignore)
        shutil.copy2(REPO / "service" / "pyproject.toml", root / "service" / "pyproject.toml")
    shutil.copytree(REPO / "scenarios", root / "scenarios", ignore=shutil.ignore_patterns(*_COPY_IGNORE))
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (root / ".gitignore").write_text(gitignore, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project under test")
    return root


# [tool.perfci] tables for throwaway test projects that measure this repository's user service.
SCENARIO_NAMES = ("journeys", "auth", "sessions", "search", "stress", "open")


def scenario_tables(folder: str | Path = "scenarios") -> str:
    """Every scenario of scenarios/ as a table; `folder` relative to the test project, or absolute."""
    return "".join(
        f'\n[tool.perfci.scenarios.{name}]\nfile = "{Path(folder) / f"{name}.py"}"\n'
        + ('model = "open"\n' if name == "open" else "")
        for name in SCENARIO_NAMES
    )


def process_table(workdir: str | Path = REPO / "service") -> str:
    """The user service as a process target, run from `workdir` (relative to the test project, or absolute)."""
    return f"""
[tool.perfci.service.process]
workdir = "{workdir}"
serve = "{{python}} -m userservice serve --host {{host}} --port {{port}} --workers {{workers}}"
seed = "{{python}} -m userservice seed --count {{seed_users}}"
database_env = "USERSVC_DATABASE_URL"
sqlite_url = "sqlite+aiosqlite:///{{path}}"
"""


def userservice_tables(workdir: str | Path = REPO / "service", scenarios: str | Path = "scenarios") -> str:
    return process_table(workdir) + scenario_tables(scenarios)


def userservice_spec(**changes: Any) -> ProcessSpec:
    """The user service as this project's [tool.perfci.service.process] describes it, with `changes`."""
    config = load_config(REPO / "pyproject.toml", environ={})
    # `env` adds to the configured environment (its JWT secret, which PostgreSQL runs need) or overrides it.
    values: dict[str, Any] = {"seed_users": 0, "boot_timeout_s": 60.0, **changes}
    values["env"] = {**config.service.env, **changes.get("env", {})}
    return process_spec(config, REPO, **values)
