"""Secrets kept off disk: passwords inside URLs (a database URL) are replaced before anything is written."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# scheme://user:password@host: the password is whatever lies between the user's colon and the last "@".
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def redact_text(text: str) -> str:
    """`text` with the password of every URL in it masked: `postgresql://u:***@host/db`."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


def redact(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every URL password masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
