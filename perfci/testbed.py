"""Testbeds: the machine fingerprint that decides whether two measurements may be compared at all.

Latency measured on one machine says nothing about latency on another: a stored baseline from another CPU,
kernel family, Python, target kind or CPU idle policy differs by far more than any effect worth a verdict
(identical code was judged 40-83 % "faster" against baselines from another machine). So a stored baseline
belongs to a testbed, and a run compares against it with verdicts only when both fingerprints are equal.
The fingerprint holds what moves latency as a whole and nothing that changes on every run (kernel patch
level, Locust or perfci version, image ids: those are still listed as environment differences).
"""

from __future__ import annotations

import hashlib
import json
import re

from perfci.measure.cpu_idle import HELD
from perfci.model import NOT_RECORDED, Environment, Frozen

# "Linux 6.8.0-45-generic", "GitHub-hosted (Linux 6.5.0-1025-azure)", "Darwin 23.6.0" -> "Linux 6.8".
_KERNEL = re.compile(r"(Linux|Darwin|Windows|FreeBSD)[ -]+(\d+)(?:\.(\d+))?")
SLUG_CPU_CHARS = 24
# What compares this tree with main on one machine: the PR check's own A/B against the merge-base.
SAME_MACHINE_COMMAND = "perfci run"
HASH_CHARS = 8


class Fingerprint(Frozen):
    """What a testbed is: two runs with equal fingerprints may be compared."""

    cpu_model: str
    cores: int
    os_family: str  # system and kernel major.minor: "Linux 6.8"
    python: str  # major.minor: "3.11"
    target_kind: str  # process, compose, url
    cpus: str  # "held awake", "not held", or "not recorded" (files written before it existed)

    def describe(self) -> str:
        """One line a reader recognises: 'AMD EPYC, 2 cores, Linux 6.18, Python 3.11, process, CPUs not held'."""
        return (
            f"{self.cpu_model}, {self.cores} cores, {self.os_family}, Python {self.python}, "
            f"{self.target_kind} target, CPUs {self.cpus}"
        )


def os_family(runner_os: str) -> str:
    match = _KERNEL.search(runner_os)
    if not match:
        return runner_os.strip() or "unknown"
    system, major, minor = match.groups()
    return f"{system} {major}.{minor}" if minor is not None else f"{system} {major}"


def _python_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _cpus(cpu_idle: str) -> str:
    if cpu_idle == NOT_RECORDED:
        return NOT_RECORDED
    return HELD if cpu_idle == HELD else "not held"


def fingerprint(environment: Environment) -> Fingerprint:
    return Fingerprint(
        cpu_model=" ".join(environment.cpu_model.split()),
        cores=environment.cores,
        os_family=os_family(environment.runner_os),
        python=_python_minor(environment.python),
        target_kind=environment.target_kind,
        cpus=_cpus(environment.cpu_idle),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def testbed_id(environment: Environment) -> str:
    """A short, stable, readable folder name: '<cpu>-<cores>c-<target>-<hash of the whole fingerprint>'.

    The slug is for people; the hash is what makes two testbeds different (the slug alone leaves out the
    kernel, Python and idle policy).
    """
    fp = fingerprint(environment)
    digest = hashlib.sha256(json.dumps(fp.model_dump(), sort_keys=True).encode()).hexdigest()[:HASH_CHARS]
    cpu = _slug(fp.cpu_model)[:SLUG_CPU_CHARS].strip("-") or "cpu"
    return f"{cpu}-{fp.cores}c-{_slug(fp.target_kind) or 'target'}-{digest}"


def same_testbed(a: Environment, b: Environment) -> bool:
    return fingerprint(a) == fingerprint(b)


def not_comparable_reason(stored: Environment, here: Environment) -> str:
    """'measured on X, this is Y', naming only the fingerprint fields that differ."""
    before, after = fingerprint(stored).model_dump(), fingerprint(here).model_dump()
    fields = [name for name in before if before[name] != after[name]]
    then = ", ".join(f"{name} {before[name]}" for name in fields)
    now = ", ".join(f"{name} {after[name]}" for name in fields)
    return f"measured on {then}; this is {now}"


_ENVIRONMENT_FIELDS = (
    "runner_os",
    "cpu_model",
    "cores",
    "python",
    "locust_version",
    "perfci_version",
    "target_kind",
    "cpu_idle",
)


def environment_differences(base_env: Environment, candidate_env: Environment) -> list[str]:
    """What differs between where the base and the candidate were measured, one line per field."""
    differences = [
        f"{name}: {getattr(base_env, name)} (baseline) vs {getattr(candidate_env, name)} (this run)"
        for name in _ENVIRONMENT_FIELDS
        if getattr(base_env, name) != getattr(candidate_env, name)
    ]
    for image in sorted(set(base_env.image_ids) | set(candidate_env.image_ids)):
        before, after = base_env.image_ids.get(image, "none"), candidate_env.image_ids.get(image, "none")
        if before != after:
            differences.append(f"image {image}: {before} (baseline) vs {after} (this run)")
    return differences
