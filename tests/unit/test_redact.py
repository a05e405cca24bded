"""Passwords inside URLs never reach run.json, logs or reports."""

from __future__ import annotations

import errno

import pytest

from perfci.errors import ConfigError, HostError
from perfci.failures import from_os_error
from perfci.redact import redact, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://postgres:wrongpw@127.0.0.1:5432/x", "postgresql://postgres:***@127.0.0.1:5432/x"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        (
            "--database-url=postgresql+asyncpg://a:b@c/d and http://x:y@z",
            "--database-url=postgresql+asyncpg://a:***@c/d and http://x:***@z",
        ),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
        ("http://127.0.0.1:8000/users/me", "http://127.0.0.1:8000/users/me"),
    ],
)
def test_url_passwords_are_masked_and_nothing_else_changes(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_nested_values_are_masked_throughout() -> None:
    config = {"service": {"database_url": "postgresql://u:secret@h/d", "workers": 2}, "command": ["x", "p://a:b@c"]}
    assert redact(config) == {
        "service": {"database_url": "postgresql://u:***@h/d", "workers": 2},
        "command": ["x", "p://a:***@c"],
    }


def test_os_errors_become_the_exit_code_they_stand_for() -> None:
    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/x/samples.parquet"))
    assert isinstance(full, HostError)
    assert "/runs/x/samples.parquet" in full.message
    denied = from_os_error(PermissionError(errno.EACCES, "Permission denied", "/ro/runs"))
    assert isinstance(denied, ConfigError)
    assert "/ro/runs" in denied.message
    assert from_os_error(OSError(errno.EIO, "Input/output error")) is None  # not one a user can act on
