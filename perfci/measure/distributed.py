"""Locust workers on other hosts: where each trial's master listens and how many remote workers it awaits.

Set in the environment of the machine that runs perfci (docs/distributed-load.md):
  PERFCI_LOCUST_REMOTE_WORKERS   workers started on other hosts, awaited by every trial's master (default 0)
  PERFCI_LOCUST_MASTER_HOST      the address the master binds (default 127.0.0.1; 0.0.0.0 for other hosts)
  PERFCI_LOCUST_MASTER_PORT      the candidate's master port (default 5557); the base arm's is the next one,
                                 because the two arms of a concurrent A/B run their trials at the same time
A trial's master quits at its end, and so do its workers: remote workers are restarted in a loop and find
the next trial's master by themselves. Their samples come back over Locust's own messaging.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from perfci.errors import ConfigError
from perfci.model import Arm

REMOTE_WORKERS_ENV = "PERFCI_LOCUST_REMOTE_WORKERS"
MASTER_HOST_ENV = "PERFCI_LOCUST_MASTER_HOST"
MASTER_PORT_ENV = "PERFCI_LOCUST_MASTER_PORT"
DEFAULT_MASTER_PORT = 5557  # Locust's own default
# A master waits this long for its remote workers, then Locust gives up (exit 1, said in its log): well
# inside load.OVERRUN_MARGIN_S, after which perfci would kill it without a reason.
EXPECT_WORKERS_MAX_WAIT_S = 40


@dataclass(frozen=True)
class RemoteWorkers:
    count: int = 0
    master_host: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT

    def port_for(self, arm: Arm) -> int:
        return self.master_port + (1 if arm == "base" else 0)

    def master_args(self, arm: Arm, local_workers: int) -> list[str]:
        """The master's role arguments: bind where remote workers reach it, await local and remote ones."""
        return [
            "--master",
            "--master-bind-host", self.master_host,
            "--master-bind-port", str(self.port_for(arm)),
            "--expect-workers", str(local_workers + self.count),
            "--expect-workers-max-wait", str(EXPECT_WORKERS_MAX_WAIT_S),
        ]  # fmt: skip


def remote_workers(environ: Mapping[str, str]) -> RemoteWorkers:
    """The remote-worker settings from the environment; a bad value is a usage error naming its variable."""
    count_text = environ.get(REMOTE_WORKERS_ENV, "0").strip() or "0"
    host = environ.get(MASTER_HOST_ENV, "127.0.0.1").strip() or "127.0.0.1"
    port_text = environ.get(MASTER_PORT_ENV, str(DEFAULT_MASTER_PORT)).strip() or str(DEFAULT_MASTER_PORT)
    if not count_text.isdigit():
        raise ConfigError(f"{REMOTE_WORKERS_ENV}={count_text!r} is not a whole number", "set it to 0 or more")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65534:
        raise ConfigError(
            f"{MASTER_PORT_ENV}={port_text!r} is not a port", "give a free TCP port; the base arm uses the next one"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{MASTER_HOST_ENV}={host!r} is not an IP address",
            "give the address of this machine's interface that the workers reach, or 0.0.0.0 for all",
        ) from None
    return RemoteWorkers(int(count_text), host, int(port_text))
