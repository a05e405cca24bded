"""Authentication storms: password logins (right and wrong) and registrations, the CPU cost of argon2.

Wrong-password logins are expected to get 401 and count as successes: the service must answer them as
slowly as right ones (a dummy hash), and this scenario measures that cost too.
"""

from __future__ import annotations

import random

from common import SEED_PASSWORD, THINK_HIGH, THINK_LOW, new_account, seed_email
from locust import FastHttpUser, between, task


class AuthStormUser(FastHttpUser):
    wait_time = between(THINK_LOW / 2, THINK_HIGH / 2)

    @task(8)
    def login(self) -> None:
        with self.client.post(
            "/auth/login", json={"email": seed_email(), "password": SEED_PASSWORD}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login failed with HTTP {response.status_code}")

    @task(2)
    def wrong_password(self) -> None:
        with self.client.post(
            "/auth/login", json={"email": seed_email(), "password": "not-the-password"}, catch_response=True
        ) as response:
            if response.status_code == 401:
                response.success()
            else:
                response.failure(f"a wrong password got HTTP {response.status_code}, expected 401")

    @task(1)
    def unknown_email(self) -> None:
        email = f"nobody-{random.randrange(10**9)}@perfci.test"
        with self.client.post(
            "/auth/login", json={"email": email, "password": "whatever-password"}, catch_response=True
        ) as response:
            if response.status_code == 401:
                response.success()
            else:
                response.failure(f"an unknown email got HTTP {response.status_code}, expected 401")

    @task(2)
    def register(self) -> None:
        with self.client.post("/auth/register", json=new_account(), catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"register failed with HTTP {response.status_code}")
