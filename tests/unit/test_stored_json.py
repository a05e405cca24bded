"""perfci's committed records read back: every way a file can be wrong is exit 2 naming the file and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.analysis.pool import POOL_DIR, read_pool
from perfci.errors import DataError, ExitCode
from perfci.model import SCHEMA_VERSION, HistoryLine
from perfci.stored_json import UPGRADE_HINT, parse_record

REPAIR = "remove or repair that line"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ('{"schema_version": 1,\n "scenario": ', "x.jsonl:3 is not valid JSON (line 2: ", REPAIR),
        (
            f'{{"schema_version": {SCHEMA_VERSION + 1}}}',
            f"x.jsonl:3 has schema_version {SCHEMA_VERSION + 1}",
            UPGRADE_HINT,
        ),
        ('{"schema_version": 1, "scenario": "auth"}', "x.jsonl:3 is not a valid history line: ", REPAIR),
        ("[1, 2]", "x.jsonl:3 is not a valid history line: top level: ", REPAIR),
    ],
    ids=["truncated", "newer", "missing-keys", "wrong-shape"],
)
def test_a_bad_record_is_exit_2_naming_where_it_is_and_what_to_do(text: str, message: str, hint: str) -> None:
    with pytest.raises(DataError) as raised:
        parse_record(text, HistoryLine, where="x.jsonl:3", what="history line", hint=REPAIR)
    assert str(raised.value).startswith(message)
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.hint == hint


def test_a_pool_run_that_is_not_utf8_is_exit_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / POOL_DIR / "some-testbed" / "20261206-01.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"note": "\xff"}')
    with pytest.raises(DataError, match=r"20261206-01\.json is not UTF-8 text"):
        read_pool(tmp_path / POOL_DIR)


def test_a_pool_run_of_a_newer_perfci_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / POOL_DIR / "some-testbed" / "20261206-01.json"
    path.parent.mkdir(parents=True)
    path.write_text(f'{{"schema_version": {SCHEMA_VERSION + 1}}}', encoding="utf-8")
    with pytest.raises(DataError, match=rf"20261206-01\.json has schema_version {SCHEMA_VERSION + 1}") as raised:
        read_pool(tmp_path / POOL_DIR)
    assert raised.value.hint == UPGRADE_HINT
