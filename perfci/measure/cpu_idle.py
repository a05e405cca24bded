"""Keep the CPUs out of idle states while trials run, so a request never waits for a core to wake up.

Between requests a lightly loaded machine idles its cores. On a virtual machine an idle core halts and
hands its time back to the host, and waking it costs whatever the host is doing at that moment: from
trial to trial the whole service seems faster or slower together, and that shared swing is most of the
noise a comparison has to see through (docs/statistics.md, "Holding the CPUs awake"). Linux's PM QoS
interface takes a latency limit from any process that holds `/dev/cpu_dma_latency` open; a limit of 0
makes the idle governor poll instead of halting until the file is closed. The device is root's by
default; where it cannot be opened the run goes on as before and says so.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perfci.model import Say

PM_QOS_DEVICE = Path("/dev/cpu_dma_latency")

HELD = "held awake"
NOT_ASKED = "not held (hold_cpus_awake = false)"
UNAVAILABLE = "not held"


@contextmanager
def cpus_awake(enabled: bool, say: Say, device: Path = PM_QOS_DEVICE) -> Iterator[str]:
    """Hold a zero wake-up latency request for the block; yields how the CPUs' idle state was left."""
    if not enabled:
        yield NOT_ASKED
        return
    try:
        fd = _request_zero_latency(device)
    except OSError as exc:
        say(
            f"perfci: note: could not hold the CPUs awake ({device}: {exc.strerror}); latencies will be noisier.\n"
            f"perfci: let this user write it (sudo chmod o+w {device}) or set hold_cpus_awake = false"
        )
        yield UNAVAILABLE
        return
    try:
        yield HELD
    finally:
        os.close(fd)  # closing the file withdraws the request


def _request_zero_latency(device: Path) -> int:
    """The open descriptor that carries the request; nothing stays open when it cannot be made."""
    fd = os.open(device, os.O_WRONLY)
    try:
        os.write(fd, struct.pack("i", 0))  # microseconds of wake-up latency tolerated: none
    except OSError:
        os.close(fd)
        raise
    return fd
