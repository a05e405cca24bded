"""Scenario files are checked before any boot: missing, failing at import, or none at all is exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.config import Config, load_config
from perfci.errors import ConfigError, ExitCode
from perfci.scenario_check import check_scenarios


def project(tmp_path: Path, files: dict[str, str | None]) -> Config:
    """A config whose scenarios are `files` (name -> source; None: the file is not written)."""
    tables = ""
    for name, source in files.items():
        tables += f'[tool.perfci.scenarios.{name}]\nfile = "perf/{name}.py"\n'
        if source is not None:
            (tmp_path / "perf").mkdir(exist_ok=True)
            (tmp_path / "perf" / f"{name}.py").write_text(source, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[tool.perfci]\n" + tables, encoding="utf-8")
    return load_config(tmp_path / "pyproject.toml", environ={})


def test_scenarios_that_import_pass_and_may_use_helpers_beside_them(tmp_path: Path) -> None:
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "helpers.py").write_text("WAIT = 1\n", encoding="utf-8")
    check_scenarios(project(tmp_path, {"a": "from helpers import WAIT\nprint('{not json')\n", "b": "X = 2\n"}))


def test_a_scenario_that_fails_at_import_names_the_file_the_line_and_the_error(tmp_path: Path) -> None:
    config = project(tmp_path, {"fine": "X = 1\n", "broken": '"""Doc."""\n\nimport os\nraise RuntimeError("no")\n'})
    with pytest.raises(ConfigError) as caught:
        check_scenarios(config)
    assert f"{tmp_path / 'perf' / 'broken.py'}, line 4" in caught.value.message
    assert "RuntimeError: no" in caught.value.message
    assert "scenario 'broken'" in caught.value.message
    assert "[tool.perfci.scenarios.broken]" in caught.value.hint
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_missing_scenario_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scenarios\.gone\.file: .*perf/gone\.py is not a file"):
        check_scenarios(project(tmp_path, {"gone": None}))


def test_a_configuration_without_scenarios_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no scenario is defined") as caught:
        check_scenarios(project(tmp_path, {}))
    assert "[tool.perfci.scenarios.NAME]" in caught.value.hint
