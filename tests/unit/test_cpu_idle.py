"""Holding the CPUs awake: the PM QoS request is written and withdrawn, and a run goes on without it."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from perfci.measure import cpu_idle

CPUIDLE = Path("/sys/devices/system/cpu/cpu0/cpuidle")


def test_a_zero_latency_request_is_written_to_the_device(tmp_path: Path) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    said: list[str] = []

    with cpu_idle.cpus_awake(True, said.append, device) as state:
        assert state == cpu_idle.HELD
        assert struct.unpack("i", device.read_bytes()) == (0,)
    assert said == []


def test_without_access_the_run_goes_on_and_says_what_to_do(tmp_path: Path) -> None:
    said: list[str] = []

    with cpu_idle.cpus_awake(True, said.append, tmp_path / "missing") as state:
        assert state == cpu_idle.UNAVAILABLE
    (message,) = said
    first, second = message.splitlines()
    assert "could not hold the CPUs awake" in first
    assert "hold_cpus_awake = false" in second


def test_switched_off_it_touches_nothing(tmp_path: Path) -> None:
    device = tmp_path / "cpu_dma_latency"
    with cpu_idle.cpus_awake(False, lambda _: None, device) as state:
        assert state == cpu_idle.NOT_ASKED
    assert not device.exists()


def _entries_of_halting_states() -> int:
    """Entries so far into CPU 0's idle states that take time to leave (everything but polling)."""
    total = 0
    for state in sorted(CPUIDLE.glob("state*")):
        if int((state / "latency").read_text()) > 0:
            total += int((state / "usage").read_text())
    return total


@pytest.mark.skipif(
    not (os.access(cpu_idle.PM_QOS_DEVICE, os.W_OK) and any(CPUIDLE.glob("state*"))),
    reason="needs write access to /dev/cpu_dma_latency and cpuidle states",
)
def test_while_held_no_cpu_enters_a_state_that_takes_time_to_leave() -> None:
    before = _entries_of_halting_states()
    time.sleep(0.5)
    if _entries_of_halting_states() == before:
        pytest.skip("CPU 0 did not halt when idle: another process holds it awake, nothing to observe")

    with cpu_idle.cpus_awake(True, lambda _: None) as state:
        assert state == cpu_idle.HELD
        time.sleep(0.05)  # let an idle period that began before the request end
        held_from = _entries_of_halting_states()
        time.sleep(0.5)
        held = _entries_of_halting_states() - held_from

    assert held == 0
