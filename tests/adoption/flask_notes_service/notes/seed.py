"""`python -m notes.seed --count N`: fill the database named by NOTES_DB with N notes."""

from __future__ import annotations

import argparse

from notes.db import connect


def main() -> None:
    parser = argparse.ArgumentParser(prog="notes.seed")
    parser.add_argument("--count", type=int, default=100)
    count = parser.parse_args().count
    with connect() as connection:
        connection.executemany(
            "INSERT INTO notes (title, body) VALUES (?, ?)",
            ((f"note {i}", f"body of note {i} " * 8) for i in range(count)),
        )


if __name__ == "__main__":
    main()
