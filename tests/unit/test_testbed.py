"""Testbeds: the fingerprint that decides whether a stored baseline may be judged against, and its id."""

from __future__ import annotations

import re

import pytest

from perfci import testbed
from perfci.measure.cpu_idle import HELD, NOT_ASKED, UNAVAILABLE
from perfci.model import NOT_RECORDED
from tests.builders import environment

ENV = environment(runner_os="Linux 6.8.0-45-generic", cpu_model="AMD EPYC 7763 64-Core Processor", cpu_idle=HELD)


@pytest.mark.parametrize(
    ("runner_os", "family"),
    [
        ("Linux 6.8.0-45-generic", "Linux 6.8"),
        ("Linux (Linux 6.5.0-1025-azure)", "Linux 6.5"),
        ("Linux-6.8-x86_64", "Linux 6.8"),
        ("Darwin 23.6.0", "Darwin 23.6"),
        ("Plan 9", "Plan 9"),
    ],
)
def test_os_family_keeps_system_and_kernel_major_minor(runner_os: str, family: str) -> None:
    assert testbed.os_family(runner_os) == family


def test_what_changes_every_run_is_no_part_of_the_testbed() -> None:
    patched = ENV.model_copy(
        update={
            "runner_os": "Linux 6.8.0-51-generic",
            "python": "3.11.11",
            "locust_version": "2.48.0",
            "perfci_version": "0.2.0",
            "image_ids": {"app": "sha256:1"},
        }
    )
    assert testbed.same_testbed(ENV, patched)
    assert testbed.testbed_id(ENV) == testbed.testbed_id(patched)


@pytest.mark.parametrize(
    "update",
    [
        {"cpu_model": "Intel Xeon Platinum 8370C"},
        {"cores": 4},
        {"runner_os": "Linux 6.11.0-1"},
        {"python": "3.12.1"},
        {"target_kind": "compose"},
        {"cpu_idle": UNAVAILABLE},
        {"cpu_idle": NOT_RECORDED},
    ],
)
def test_each_fingerprint_field_makes_another_testbed(update: dict[str, object]) -> None:
    other = ENV.model_copy(update=update)
    assert not testbed.same_testbed(ENV, other)
    assert testbed.testbed_id(ENV) != testbed.testbed_id(other)


def test_cpus_not_held_is_one_state_whatever_the_reason() -> None:
    unavailable = ENV.model_copy(update={"cpu_idle": UNAVAILABLE})
    assert testbed.same_testbed(unavailable, ENV.model_copy(update={"cpu_idle": NOT_ASKED}))


def test_the_id_is_a_readable_slug_and_a_stable_hash() -> None:
    # Stable across versions: changing it would orphan every stored baseline, so it is pinned here.
    assert testbed.testbed_id(ENV) == "amd-epyc-7763-64-core-pr-2c-process-cb1190cd"
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", testbed.testbed_id(ENV))


def test_the_reason_names_only_the_fields_that_differ() -> None:
    other = ENV.model_copy(update={"cores": 4, "cpu_idle": NOT_RECORDED})
    assert testbed.not_comparable_reason(other, ENV) == (
        "measured on cores 4, cpus not recorded; this is cores 2, cpus held awake"
    )
    assert testbed.fingerprint(ENV).describe() == (
        "AMD EPYC 7763 64-Core Processor, 2 cores, Linux 6.8, Python 3.11, process target, CPUs held awake"
    )
