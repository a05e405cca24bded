"""The HTTP routes: list, read and add notes, and a health route for whoever waits for the service."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, abort, request

from notes.db import connect

# Milliseconds each listing waits before answering: a stand-in for a slow query.
SLOW_MS = int(os.environ.get("NOTES_SLOW_MS", "0"))

app = Flask(__name__)


@app.get("/health")
def health() -> tuple[str, int]:
    with connect() as connection:
        connection.execute("SELECT 1").fetchone()
    return "", 204


@app.get("/notes")
def list_notes() -> list[dict[str, Any]]:
    if SLOW_MS:
        time.sleep(SLOW_MS / 1000)
    limit = min(int(request.args.get("limit", "20")), 100)
    with connect() as connection:
        rows = connection.execute("SELECT id, title FROM notes ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [dict(row) for row in rows]


@app.get("/notes/<int:note_id>")
def read_note(note_id: int) -> dict[str, Any]:
    with connect() as connection:
        row = connection.execute("SELECT id, title, body FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        abort(404)
    return dict(row)


@app.post("/notes")
def add_note() -> tuple[dict[str, Any], int]:
    payload = request.get_json(force=True)
    with connect() as connection:
        cursor = connection.execute(
            "INSERT INTO notes (title, body) VALUES (?, ?)", (str(payload["title"]), str(payload.get("body", "")))
        )
    return {"id": cursor.lastrowid}, 201
