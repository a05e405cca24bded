"""Waiting for a booting service to answer, and the log excerpts that explain why it did not."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from perfci.errors import BootError

TAIL_LINES = 20


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log, for error messages; says so when there is no log to show."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(tail) if tail else "(the log is empty)"


def boot_failure(summary: str, log_path: Path, hint: str) -> BootError:
    """A BootError whose first line says what happened and whose body is the service log's tail."""
    return BootError(
        f"{summary}; its log is at {log_path}\n--- last lines of {log_path} ---\n{log_tail(log_path)}",
        hint,
        log=log_path,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it, so concurrent runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class Readiness:
    """What a ready service answers: GET `path` gives `status` ([tool.perfci.service] readiness_*)."""

    path: str = "/readyz"
    status: int = 200

    def describe(self) -> str:
        return f"GET {self.path} answering {self.status}"


DEFAULT_READINESS = Readiness()


def wait_until_ready(
    base_url: str,
    timeout_s: float,
    still_starting: Callable[[], bool] = lambda: True,
    readiness: Readiness = DEFAULT_READINESS,
) -> bool:
    """Poll the readiness path until it answers its status (True), the timeout passes or `still_starting`
    says stop (False)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            try:
                if client.get(base_url + readiness.path).status_code == readiness.status:
                    return True
            except httpx.HTTPError:
                pass  # not listening yet: the normal state of a booting service
            if not still_starting() or time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def not_ready_hint(readiness: Readiness) -> str:
    """What to do about a service that never answered its readiness check."""
    return (
        f"check service.readiness_path ({readiness.path}) and readiness_status ({readiness.status}) in "
        "[tool.perfci.service]; raise boot_timeout_s if the service is just slow"
    )
