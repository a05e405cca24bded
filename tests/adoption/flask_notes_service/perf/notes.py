"""Readers of the notes service: mostly listings, some single notes, now and then a new note."""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

SEEDED = int(os.environ.get("PERFCI_SEED_USERS", "100"))


class NotesReader(HttpUser):
    wait_time = between(0.05, 0.15)

    @task(4)
    def list_notes(self) -> None:
        self.client.get("/notes?limit=20", name="/notes")

    @task(2)
    def read_note(self) -> None:
        self.client.get(f"/notes/{random.randint(1, SEEDED)}", name="/notes/{id}")

    @task(1)
    def add_note(self) -> None:
        self.client.post("/notes", json={"title": "new", "body": "written under load"}, name="/notes")
