"""Realistic journeys: log in, read and update the profile, look up others, search, log out; register now and then.

Weights follow a typical account service: reads dominate, writes and logins are rarer. Think time between
tasks (PERFCI_THINK_S) keeps users closed-loop but humane. Run alone: `locust -f scenarios/journeys.py`.
"""

from __future__ import annotations

import random

from common import SEARCH_PREFIXES, SEED_USERS, THINK_HIGH, THINK_LOW, Session, new_account
from locust import FastHttpUser, between, task


class JourneyUser(FastHttpUser):
    wait_time = between(THINK_LOW, THINK_HIGH)

    def on_start(self) -> None:
        self.session = Session(self.client)
        self.session.login()

    @task(10)
    def read_profile(self) -> None:
        self.session.call("GET", "/users/me", "/users/me")

    @task(2)
    def update_profile(self) -> None:
        name = f"{random.choice(SEARCH_PREFIXES[:36]).title()}{random.randrange(10_000)} Journey"
        self.session.call("PATCH", "/users/me", "/users/me", json={"display_name": name})

    @task(8)
    def look_up_someone(self) -> None:
        user_id = random.randint(1, SEED_USERS)
        with self.client.get(f"/users/{user_id}", name="/users/{id}", catch_response=True) as response:
            if response.status_code == 404:
                response.success()  # a deleted or never-seeded id is a normal answer, not a failure

    @task(6)
    def search(self) -> None:
        prefix = random.choice(SEARCH_PREFIXES)
        self.client.get(f"/users?q={prefix}&limit=20", name="/users")

    @task(1)
    def log_out_and_in(self) -> None:
        self.session.logout()
        self.session.login()

    @task(1)
    def register(self) -> None:
        account = new_account()
        with self.client.post("/auth/register", json=account, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"register failed with HTTP {response.status_code}")
