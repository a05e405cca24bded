"""Shared pieces of the scenarios: seeded accounts, search prefixes, and a token-holding session.

Settings come from PERFCI_* environment variables (perfci sets them; plain `locust -f` uses the defaults):
PERFCI_SEED_USERS (accounts `seed-{i:06d}@perfci.test` seeded before load, default 2000) and
PERFCI_THINK_S ("low,high" seconds of think time between tasks, default "0.02,0.1": short, so a few
seconds of load hold enough requests per endpoint to judge).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

SEED_PASSWORD = "perfci-seed-password"  # noqa: S105  (the service's public seed contract: userservice.seed)
SEED_USERS = max(1, int(os.environ.get("PERFCI_SEED_USERS", "2000")))
_THINK = [float(x) for x in os.environ.get("PERFCI_THINK_S", "0.02,0.1").split(",")]
THINK_LOW, THINK_HIGH = _THINK[0], _THINK[-1]
# Two-letter prefixes of display names and of seeded emails: result sizes vary from none to many.
SEARCH_PREFIXES = (
    "al", "an", "ar", "be", "ca", "ch", "da", "el", "em", "ev", "ga", "ha", "is", "ja", "jo", "ka", "la", "le",
    "li", "lu", "ma", "mi", "na", "no", "ol", "pa", "ra", "ro", "sa", "so", "th", "to", "vi", "wi", "ya", "zo",
    "seed-00", "seed-001", "qx",
)  # fmt: skip


def seed_email(index: int | None = None) -> str:
    return f"seed-{(random.randrange(SEED_USERS) if index is None else index):06d}@perfci.test"


def new_account() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    return {"email": f"load-{tag}@perfci.test", "password": f"pw-{tag}-load", "display_name": f"Load {tag}"}


class Session:
    """An access/refresh token pair held by one simulated user.

    Refreshes at 80 % of the access token's lifetime; on a 401 it refreshes and retries once. Failures are
    reported to Locust (never hidden) through catch_response.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.access: str | None = None
        self.refresh_token: str | None = None
        self.renew_at = 0.0

    def _store(self, body: dict[str, Any]) -> None:
        self.access = body["access_token"]
        self.refresh_token = body["refresh_token"]
        self.renew_at = time.monotonic() + 0.8 * float(body.get("expires_in", 900))

    def login(self, email: str | None = None, password: str = SEED_PASSWORD) -> bool:
        with self.client.post(
            "/auth/login", json={"email": email or seed_email(), "password": password}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login failed with HTTP {response.status_code}")
                return False
            self._store(response.json())
            return True

    def refresh(self) -> bool:
        if self.refresh_token is None:
            return self.login()
        with self.client.post(
            "/auth/refresh", json={"refresh_token": self.refresh_token}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"refresh failed with HTTP {response.status_code}")
                self.access = self.refresh_token = None
                return False
            self._store(response.json())
            return True

    def logout(self) -> None:
        if self.refresh_token is not None:
            self.client.post("/auth/logout", json={"refresh_token": self.refresh_token})
        self.access = self.refresh_token = None

    def ensure(self) -> bool:
        if self.access is None:
            return self.login()
        if time.monotonic() >= self.renew_at:
            return self.refresh() or self.login()
        return True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    def call(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        """An authenticated request; on a 401 refresh once and retry, counting the first attempt as failed."""
        if not self.ensure():
            return None
        with self.client.request(method, path, name=name, headers=self.headers(), catch_response=True, **kwargs) as r:
            if r.status_code == 401 and self.refresh():
                r.failure("401: access token rejected; refreshed and retried")
            elif r.status_code >= 400:
                r.failure(f"HTTP {r.status_code}")
                return r
            else:
                return r
        with self.client.request(method, path, name=name, headers=self.headers(), catch_response=True, **kwargs) as r:
            if r.status_code >= 400:
                r.failure(f"HTTP {r.status_code} after refresh")
            return r
