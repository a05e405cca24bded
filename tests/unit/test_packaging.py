"""perfci's distribution metadata: one version, shown by `perfci --version`, and the licence it declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import perfci
from perfci.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"perfci {perfci.__version__}"


def test_the_version_is_written_once() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "version" not in PROJECT
    assert PROJECT["dynamic"] == ["version"]
    assert tool["dynamic"]["version"] == {"attr": "perfci.__version__"}


def test_the_declared_licence_is_the_shipped_one() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_metadata_points_at_docs_for_adopters() -> None:
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(PROJECT["urls"])
    assert PROJECT["urls"]["Documentation"].endswith("docs/adopting.md")
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]


def test_ci_builds_and_checks_the_distributions() -> None:
    import yaml

    lint = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["lint"]
    assert "nox -s package" in [step.get("run") for step in lint["steps"]]
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "nox -s package" in ci_run
    assert ci_run.rstrip().endswith('exit "$status"'), "the README's test command still runs last"
    assert ci_run.index("nox -s package") < ci_run.index("nox -s tests")
