"""This project's user service (`service/`): its regression knobs and its password-hash settings.

Calibration injects regressions of known size through the service's knobs; a finding about login cost names
its argon2 settings. The rest of perfci knows the service only through [tool.perfci] in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Mapping

KNOB_DELAY = "USERSVC_KNOB_DELAY"  # "ENDPOINT=MS[@FRACTION]": a wait before answering
KNOB_BURN = "USERSVC_KNOB_BURN"  # "ENDPOINT=USus[@FRACTION]": CPU work before answering
KNOB_ERRORS = "USERSVC_KNOB_ERRORS"  # "ENDPOINT=RATE": that share of requests answer 500
HASH_TIME_COST = "USERSVC_HASH_TIME_COST"
HASH_MEMORY_KIB = "USERSVC_HASH_MEMORY_KIB"


def _fraction_suffix(fraction: float) -> str:
    return "" if fraction >= 1 else f"@{fraction:g}"


def delay(endpoint: str, ms: float, fraction: float = 1.0) -> dict[str, str]:
    """The service's settings that make `endpoint` wait `ms` longer on `fraction` of its requests."""
    return {KNOB_DELAY: f"{endpoint}={ms:.2f}{_fraction_suffix(fraction)}"}


def burn(endpoint: str, ms: float, fraction: float = 1.0) -> dict[str, str]:
    """CPU time, in whole microseconds: work that competes for the cores, unlike a wait."""
    return {KNOB_BURN: f"{endpoint}={max(1.0, ms * 1000):.0f}us{_fraction_suffix(fraction)}"}


def errors(endpoint: str, rate: float) -> dict[str, str]:
    return {KNOB_ERRORS: f"{endpoint}={rate:g}"}


def password_hash_settings(service_env: Mapping[str, str]) -> tuple[str, str]:
    """(argon2 time cost, memory in KiB) as the service was configured; "?" where unset."""
    return service_env.get(HASH_TIME_COST, "?"), service_env.get(HASH_MEMORY_KIB, "?")
