"""perfci's committed JSON records read back: baselines, their history lines and the calibration pool.

Each is a pydantic model with a `schema_version`. One reader says what is wrong with a file and what to do:
not JSON, written by a newer perfci, or the wrong shape is a `DataError` (exit 2) naming the file (and the
line, for a history), never a traceback and never a silent "no baseline".
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from perfci.errors import DataError
from perfci.model import SCHEMA_VERSION

M = TypeVar("M", bound=BaseModel)

UPGRADE_HINT = "upgrade perfci (pip install -U perfci) to read files written by a newer version"


def parse_record(text: str, model: type[M], *, where: str, what: str, hint: str) -> M:
    """`text` as a `model`; `where` names the file (or file:line) in errors, `what` the kind of record, and
    `hint` says how to repair it.

    Python's json module, not pydantic's JSON mode: it reads NaN and Infinity, so that a baseline holding
    them is refused by name (analysis/baselines.implausible_figures) rather than as unreadable JSON.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})", hint) from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise DataError(f"{where} has schema_version {version}; this perfci reads up to {SCHEMA_VERSION}", UPGRADE_HINT)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "top level"
        raise DataError(f"{where} is not a valid {what}: {field}: {first['msg']}", hint) from None
