"""A small service shaped unlike the user service: Starlette, its own health route (204), its own database
variable (NOTES_DB, a plain SQLite path) and its own start and seed commands.

Serve: `python -m uvicorn notes:app --host H --port P`; seed: `python notes.py seed COUNT`.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DB_ENV = "NOTES_DB"


def _connect() -> sqlite3.Connection:
    return sqlite3.connect(os.environ[DB_ENV])


async def health(request: Request) -> Response:
    return Response(status_code=204)


async def note(request: Request) -> Response:
    with _connect() as db:
        row = db.execute("SELECT id, text FROM notes WHERE id = ?", (request.path_params["note_id"],)).fetchone()
    if row is None:
        return JSONResponse({"detail": "no such note"}, status_code=404)
    return JSONResponse({"id": row[0], "text": row[1]})


app = Starlette(routes=[Route("/health", health), Route("/notes/{note_id:int}", note)])


def seed(count: int) -> None:
    with _connect() as db:
        db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.executemany("INSERT INTO notes (id, text) VALUES (?, ?)", [(i, f"note {i}") for i in range(1, count + 1)])


if __name__ == "__main__" and sys.argv[1:2] == ["seed"]:
    seed(int(sys.argv[2]))
