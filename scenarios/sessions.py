"""Concurrent sessions with short-lived tokens: refresh under load, the refresh race, logout and log in again.

Each user holds a session and refreshes it at 80 % of the access token's lifetime or every
PERFCI_REFRESH_EVERY_S seconds (default 5), whichever comes first, so refreshes happen under load even with
long-lived tokens. Now and then a user fires PERFCI_RACE_WIDTH (default 5) refreshes with one token at once:
exactly one may succeed, the rest must be refused (and the family revoked); anything else is a failure.
"""

from __future__ import annotations

import os
import time

import gevent
from common import THINK_HIGH, THINK_LOW, Session
from locust import FastHttpUser, between, task

REFRESH_EVERY_S = float(os.environ.get("PERFCI_REFRESH_EVERY_S", "5"))
RACE_WIDTH = int(os.environ.get("PERFCI_RACE_WIDTH", "5"))


class SessionUser(FastHttpUser):
    wait_time = between(THINK_LOW, THINK_HIGH)
    concurrency = max(10, RACE_WIDTH * 2)  # connections, so the race's refreshes really overlap

    def on_start(self) -> None:
        self.session = Session(self.client)
        self.session.login()
        self.session.renew_at = min(self.session.renew_at, time.monotonic() + REFRESH_EVERY_S)

    @task(20)
    def use_session(self) -> None:
        self.session.call("GET", "/users/me", "/users/me")
        if self.session.access is not None:
            self.session.renew_at = min(self.session.renew_at, time.monotonic() + REFRESH_EVERY_S)

    @task(1)
    def refresh_race(self) -> None:
        if not self.session.ensure() or self.session.refresh_token is None:
            return
        token = self.session.refresh_token

        def attempt() -> int:
            response = self.client.post(
                "/auth/refresh", json={"refresh_token": token}, name="/auth/refresh [race]", catch_response=True
            )
            with response:
                response.success()  # judged below, as a group: one 200 and the rest 401 is correct
            return response.status_code

        codes = [g.value for g in gevent.joinall([gevent.spawn(attempt) for _ in range(RACE_WIDTH)])]
        winners = codes.count(200)
        if winners != 1 or any(code not in (200, 401) for code in codes):
            self.environment.events.request.fire(
                request_type="RACE",
                name="/auth/refresh [race outcome]",
                response_time=0.0,
                response_length=0,
                response=None,
                context={},
                exception=AssertionError(f"refresh race: {winners} of {RACE_WIDTH} succeeded, codes {sorted(codes)}"),
            )
        # The replay revoked the family: the winner's new tokens are dead too, so log in again.
        self.session.logout()
        self.session.login()

    @task(2)
    def log_out_and_in(self) -> None:
        self.session.logout()
        self.session.login()
