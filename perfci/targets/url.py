"""A service someone else runs: perfci checks that it is ready and only loads it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from perfci.config import ServiceSettings
from perfci.errors import BootError, ConfigError
from perfci.targets.base import Target
from perfci.targets.health import DEFAULT_READINESS, Readiness, not_ready_hint, wait_until_ready

REFUSED_FOR_S = 5.0  # a booting service may refuse for a moment; one refusing this long is not there


def _listening(base_url: str) -> bool:
    """False when every connection to the URL's host and port is refused for REFUSED_FOR_S.

    Only a refusal counts: a slow or filtered address is left to the readiness timeout.
    """
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + REFUSED_FOR_S
    while True:
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2.0).close()
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        except OSError:
            return True  # not a plain refusal (a timeout, no route): let the readiness wait decide
        else:
            return True


@contextmanager
def url_target(
    base_url: str,
    timeout_s: float = 10.0,
    seed_users: int = 0,
    readiness: Readiness = DEFAULT_READINESS,
) -> Iterator[Target]:
    """Yield a Target for `base_url` once its readiness path answers; nothing to tear down.

    `seed_users` states how many users the running service already holds under the seed scheme.
    """
    base_url = base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise BootError(
            f"the service URL {base_url!r} is not an http(s) address",
            "pass the address the way a browser takes it, e.g. --url http://127.0.0.1:8765",
        )
    if not _listening(base_url):
        raise BootError(
            f"nothing listens at {base_url}: the connection was refused for {REFUSED_FOR_S:g} s",
            "start the service first, or correct its address (--url, --base-url, --candidate-url, service.url)",
        )
    if not wait_until_ready(base_url, timeout_s, readiness=readiness):
        raise BootError(
            f"no ready service at {base_url} within {timeout_s:g} s: "
            f"service.readiness_path never gave {readiness.describe()}",
            not_ready_hint(readiness),
        )
    yield Target(kind="url", base_url=base_url, seed_users=seed_users, description=f"url ({base_url})")


def url_run_arms(service: ServiceSettings, *, wants_ab: bool) -> tuple[str | None, str | None, str]:
    """(A/B reference, base label, candidate label) of a run against running services.

    An A/B needs two services: one URL measured twice would be an A/A, reported as a comparison.
    """
    candidate = service.candidate_url or service.url
    if not wants_ab:
        return None, None, candidate
    if not service.base_url:
        raise ConfigError(
            "an A/B run of target 'url' needs two running services, but only one URL is set",
            "pass --base-url URL --candidate-url URL (or set base_url and candidate_url in [tool.perfci.service]), "
            "or --against-baseline to compare one service with the stored baseline",
        )
    if service.base_url.rstrip("/") == candidate.rstrip("/"):
        raise ConfigError(
            f"base_url and candidate_url are the same service ({candidate}): that is an A/A, not an A/B",
            "start the base and the candidate on different ports and pass both",
        )
    return service.base_url, service.base_url, candidate
