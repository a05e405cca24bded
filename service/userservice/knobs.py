"""Regression knobs: per-route added delay, CPU burn and injected errors, which exist to validate the pipeline."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from fastapi import Request

from userservice.errors import APIError


@dataclass(frozen=True)
class Delay:
    ms: float
    fraction: float = 1.0  # below 1: only that share of requests, for tail-only regressions


@dataclass(frozen=True)
class Burn:
    cpu_us: float  # microseconds of this thread's CPU time spent per request
    fraction: float = 1.0


@dataclass(frozen=True)
class Knobs:
    """Keyed by route label, `"{METHOD} {path template}"`, e.g. `GET /users/{id}`."""

    delays: dict[str, Delay] = field(default_factory=dict)
    error_rates: dict[str, float] = field(default_factory=dict)
    burns: dict[str, Burn] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.delays or self.error_rates or self.burns)


def _entries(spec: str, variable: str) -> list[tuple[str, str]]:
    entries = []
    for raw in spec.split(";"):
        item = raw.strip()
        if not item:
            continue
        # Split on the last "=": route templates never contain one, values never do either.
        route, sep, value = item.rpartition("=")
        route = " ".join(route.split())
        method, _, path = route.partition(" ")
        if not sep or not path.startswith("/") or not method.isalpha():
            raise ValueError(f"{variable}: {item!r} is not ROUTE=VALUE with ROUTE like 'GET /users/{{id}}'")
        entries.append((f"{method.upper()} {path}", value.strip()))
    return entries


def _fraction(text: str, variable: str, item: str) -> float:
    try:
        fraction = float(text)
    except ValueError:
        raise ValueError(f"{variable}: {item!r}: {text!r} is not a number between 0 and 1") from None
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{variable}: {item!r}: the fraction must be between 0 and 1")
    return fraction


_CPU_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|us)$")
MAX_BURN_US = 1_000_000.0  # one second of CPU per request is already a broken service


def _burn(value: str, route: str) -> Burn:
    amount, _, fraction_text = value.partition("@")
    match = _CPU_TIME.match(amount.strip())
    if not match:
        raise ValueError(f"USERSVC_KNOB_BURN: {route}: {amount!r} is not CPU time like 0.3ms or 250us")
    cpu_us = float(match.group(1)) * (1000.0 if match.group(2) == "ms" else 1.0)
    if not 0.0 < cpu_us <= MAX_BURN_US:
        raise ValueError(f"USERSVC_KNOB_BURN: {route}: the CPU time must be above 0 and at most 1000ms")
    fraction = _fraction(fraction_text, "USERSVC_KNOB_BURN", route) if fraction_text else 1.0
    return Burn(cpu_us=cpu_us, fraction=fraction)


def parse_knobs(delay_spec: str, error_spec: str, burn_spec: str = "") -> Knobs:
    """Parse `ROUTE=MS[@FRACTION];...` (delays), `ROUTE=FRACTION;...` (error rates) and
    `ROUTE=CPU[@FRACTION];...` with CPU like `0.3ms` or `250us` (CPU burned per request)."""
    delays: dict[str, Delay] = {}
    for route, value in _entries(delay_spec, "USERSVC_KNOB_DELAY"):
        ms_text, _, fraction_text = value.partition("@")
        try:
            ms = float(ms_text)
        except ValueError:
            raise ValueError(f"USERSVC_KNOB_DELAY: {route}: {ms_text!r} is not a number of milliseconds") from None
        if not 0.0 <= ms <= 60_000:
            raise ValueError(f"USERSVC_KNOB_DELAY: {route}: the delay must be between 0 and 60000 ms")
        fraction = _fraction(fraction_text, "USERSVC_KNOB_DELAY", route) if fraction_text else 1.0
        delays[route] = Delay(ms=ms, fraction=fraction)
    errors = {
        route: _fraction(value, "USERSVC_KNOB_ERRORS", route)
        for route, value in _entries(error_spec, "USERSVC_KNOB_ERRORS")
    }
    burns = {route: _burn(value, route) for route, value in _entries(burn_spec, "USERSVC_KNOB_BURN")}
    return Knobs(delays=delays, error_rates=errors, burns=burns)


def unknown_routes(knobs: Knobs, known: Iterable[str]) -> list[str]:
    """The knob routes that name no route of the app: a typo there would inject nothing, silently."""
    labels = set(known)
    return sorted(route for route in (*knobs.delays, *knobs.error_rates) if route not in labels)


def route_label(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return f"{request.method} {path}"


# uvloop's timers count whole milliseconds (it rounds 0.25 ms to 0), so a sleep that must be exact below a
# few milliseconds sleeps most of the way and then yields until the deadline.
TIMER_SLACK_S = 0.002


async def precise_sleep(seconds: float) -> None:
    """Wait `seconds` (to the microsecond) without holding the event loop: other requests run meanwhile.

    Calibration asks for delays of a tenth of a fast endpoint's latency, a fraction of a millisecond.
    """
    deadline = time.perf_counter() + seconds
    if seconds > TIMER_SLACK_S:
        await asyncio.sleep(seconds - TIMER_SLACK_S)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)


BURN_BLOCK = b"perfci cpu burn " * 64  # 1 KiB hashed per step: about a microsecond of real work


def burn_cpu(cpu_us: float) -> int:
    """Spend `cpu_us` microseconds of this thread's CPU time hashing; returns the number of hash steps.

    A CPU-bound regression, unlike a sleep: it holds the event loop and competes for the cores with
    everything else on the machine, so it shows how much of a CPU cost concurrent arms report. It is
    timed by the thread's CPU clock, not the wall clock, so time spent waiting for a core (the
    machine busy) does not count as work done: the added work is the same however loaded the host is.
    """
    deadline = time.thread_time_ns() + int(cpu_us * 1000)
    digest = hashlib.sha256()
    steps = 0
    while time.thread_time_ns() < deadline:
        digest.update(BURN_BLOCK)
        steps += 1
    return steps


def knob_dependency(knobs: Knobs) -> Callable[[Request], Awaitable[None]]:
    """An app-wide dependency: it runs after routing, so the route template is known."""

    async def apply_knobs(request: Request) -> None:
        label = route_label(request)
        delay = knobs.delays.get(label)
        if delay is not None and random.random() < delay.fraction:
            await precise_sleep(delay.ms / 1000)
        burn = knobs.burns.get(label)
        if burn is not None and random.random() < burn.fraction:
            burn_cpu(burn.cpu_us)
        rate = knobs.error_rates.get(label)
        if rate is not None and random.random() < rate:
            raise APIError(500, "injected_error", f"error injected by USERSVC_KNOB_ERRORS for {label}")

    return apply_knobs
