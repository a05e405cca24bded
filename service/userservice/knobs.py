"""Regression knobs: per-route added delay and injected errors, which exist to validate the pipeline."""

from __future__ import annotations

import asyncio
import random
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
class Knobs:
    """Keyed by route label, `"{METHOD} {path template}"`, e.g. `GET /users/{id}`."""

    delays: dict[str, Delay] = field(default_factory=dict)
    error_rates: dict[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.delays or self.error_rates)


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


def parse_knobs(delay_spec: str, error_spec: str) -> Knobs:
    """Parse `ROUTE=MS[@FRACTION];...` (delays) and `ROUTE=FRACTION;...` (error rates)."""
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
    return Knobs(delays=delays, error_rates=errors)


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


def knob_dependency(knobs: Knobs) -> Callable[[Request], Awaitable[None]]:
    """An app-wide dependency: it runs after routing, so the route template is known."""

    async def apply_knobs(request: Request) -> None:
        label = route_label(request)
        delay = knobs.delays.get(label)
        if delay is not None and random.random() < delay.fraction:
            await precise_sleep(delay.ms / 1000)
        rate = knobs.error_rates.get(label)
        if rate is not None and random.random() < rate:
            raise APIError(500, "injected_error", f"error injected by USERSVC_KNOB_ERRORS for {label}")

    return apply_knobs
