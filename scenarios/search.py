"""Database-heavy search: prefix queries with keyset pagination, following next_cursor for a few pages.

PERFCI_SEARCH_PAGES (default 3) bounds how deep a user pages; prefixes vary so result sizes vary.
"""

from __future__ import annotations

import os
import random
from urllib.parse import quote

from common import SEARCH_PREFIXES, THINK_HIGH, THINK_LOW
from locust import FastHttpUser, between, task

MAX_PAGES = int(os.environ.get("PERFCI_SEARCH_PAGES", "3"))


class SearchUser(FastHttpUser):
    wait_time = between(THINK_LOW / 2, THINK_HIGH / 2)

    @task
    def search_and_page(self) -> None:
        prefix = random.choice(SEARCH_PREFIXES)
        limit = random.choice((10, 20, 50))
        cursor: str | None = None
        for _ in range(random.randint(1, MAX_PAGES)):
            url = f"/users?q={quote(prefix)}&limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
            with self.client.get(url, name="/users", catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"search failed with HTTP {response.status_code}")
                    return
                cursor = response.json().get("next_cursor")
            if not cursor:
                return
