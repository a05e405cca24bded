"""Environment metadata for run.json and baselines: where a measurement was taken."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import perfci
from perfci.model import NOT_RECORDED, Environment


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def current_environment(
    target_kind: str, image_ids: Mapping[str, str] | None = None, cpu_idle: str = NOT_RECORDED
) -> Environment:
    runner = os.environ.get("RUNNER_OS")  # set by GitHub Actions
    system = f"{platform.system()} {platform.release()}"
    return Environment(
        runner_os=f"{runner} ({system})" if runner else system,
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        locust_version=_version("locust"),
        perfci_version=perfci.__version__,
        target_kind=target_kind,
        image_ids=dict(image_ids or {}),
        cpu_idle=cpu_idle,
    )
