"""Readers of the notes service: each reads a random seeded note (PERFCI_SEED_USERS of them)."""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant, task

NOTES = int(os.environ.get("PERFCI_SEED_USERS", "10"))


class Reader(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def read(self) -> None:
        self.client.get(f"/notes/{random.randint(1, NOTES)}", name="/notes/{id}")
