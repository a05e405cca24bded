"""The performance report end to end: a tiny real measurement and stress of the service (process, SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.commands.report_doc import write_performance_report
from perfci.config import load_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("perfci.measure.load", reason="perfci.measure.load (run_trial) is not in this checkout yet")

REPO = Path(__file__).resolve().parents[2]
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}


def test_a_smoke_report_measures_stresses_and_writes_every_section(tmp_path: Path) -> None:
    config = load_config(
        REPO / "pyproject.toml",
        environ={},
        overrides={
            "profile": "smoke",
            "default_scenarios": ["journeys"],
            "target": "process",
            "runs_dir": str(tmp_path / "runs"),
            "service.seed_users": 50,
            "service.env": FAST_HASH,
            "stress.step_s": 3,
            "stress.max_duration_s": 30,
        },
    )
    said: list[str] = []
    argv = ["perfci", "report-doc", "--profile", "smoke", "--scenario", "journeys"]

    path = write_performance_report(config, said.append, output=tmp_path / "report.md", argv=argv)

    text = path.read_text(encoding="utf-8")
    [run_dir] = (tmp_path / "runs").iterdir()
    assert "```sh\nperfci report-doc --profile smoke --scenario journeys\n```" in text
    assert str(run_dir) in text
    assert "| Database | SQLite |" in text
    assert "ran on SQLite" in text
    results = text.split("## Results per endpoint", 1)[1].split("\n## ", 1)[0]
    assert "### journeys" in results
    assert "| GET /users/me |" in results
    breaking = text.split("## Breaking points", 1)[1].split("\n## ", 1)[0]
    assert any(line.startswith("| journeys |") for line in breaking.splitlines())
    assert (run_dir / "journeys" / "stress.json").is_file()
    assert (run_dir / "journeys" / "candidate-0" / "samples.parquet").is_file()
    assert "Findings and recommendations" in (run_dir / "report.html").read_text(encoding="utf-8")
    assert any("performance report written to" in line for line in said)
