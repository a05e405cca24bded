"""An open model: requests arrive at a fixed rate whatever the service does, latency counted from the
intended start (no coordinated omission).

PERFCI_ARRIVAL_RATE (requests/s in total, default 40) is shared by PERFCI_USERS users (default 1); each
schedules its arrivals as a Poisson process (t += expovariate(rate)) and sends each request in its own
greenlet, so a slow answer never delays the next arrival. perfci's recorder adds the wait between the
scheduled and the actual start to the latency, and flags a trial that missed its rate.
"""

from __future__ import annotations

import os
import random
import time

import gevent.pool
from common import SEARCH_PREFIXES, SEED_USERS, Session
from locust import FastHttpUser, constant, task

INTENDED_START_KEY = "perfci_intended_start"  # perfci.measure.locust_plugin reads it from the request context
RATE = float(os.environ.get("PERFCI_ARRIVAL_RATE", "40")) / max(1, int(os.environ.get("PERFCI_USERS", "1")))
MAX_IN_FLIGHT = 500


class ArrivalUser(FastHttpUser):
    wait_time = constant(0)
    concurrency = 100

    def on_start(self) -> None:
        self.session = Session(self.client)
        self.session.login()
        self.pool = gevent.pool.Pool(MAX_IN_FLIGHT)
        self.next_at = time.time()

    def _send(self, intended: float) -> None:
        context = {INTENDED_START_KEY: intended}
        kind = random.random()
        if kind < 0.4:
            self.client.get(f"/users/{random.randint(1, SEED_USERS)}", name="/users/{id}", context=context)
        elif kind < 0.7:
            self.client.get(f"/users?q={random.choice(SEARCH_PREFIXES)}&limit=20", name="/users", context=context)
        else:
            self.client.get("/users/me", name="/users/me", headers=self.session.headers(), context=context)

    @task
    def arrive(self) -> None:
        self.next_at += random.expovariate(RATE)
        delay = self.next_at - time.time()
        if delay > 0:
            gevent.sleep(delay)
        self.session.ensure()
        self.pool.spawn(self._send, self.next_at)
