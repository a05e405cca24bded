"""What every target yields: where the service answers and what to watch while it is loaded."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TargetKind = Literal["compose", "process", "url"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    base_url: str  # e.g. "http://127.0.0.1:8765", no trailing slash
    log_paths: tuple[Path, ...] = ()  # kept after tear-down, shown on failure
    pids: tuple[int, ...] = ()  # process target: the service's root process(es); children are found
    containers: tuple[str, ...] = ()  # compose target: container ids of the service and its database
    container_roles: Mapping[str, str] = field(default_factory=dict)  # container id -> "service" or "database"
    database_url: str | None = None  # PostgreSQL URL reachable from this host, for counters; None otherwise
    image_ids: Mapping[str, str] = field(default_factory=dict)  # compose target: service name -> image id
    seed_users: int = 0  # users created before load (emails/passwords follow the service's seed scheme)
    description: str = ""  # one line for the summary, e.g. "process (uvicorn, SQLite)"
    # The service's exit code once it has exited, None while it runs; None for targets perfci cannot watch.
    # A service that dies during a trial is an infrastructure failure, never a regression of the change.
    exit_code: Callable[[], int | None] | None = field(default=None, compare=False)
