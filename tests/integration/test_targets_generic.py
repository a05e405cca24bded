"""A service shaped unlike the user service, measured through configuration alone; bad settings are exit 2/3.

The notes service (tests/integration/starlette_notes_service) is Starlette, answers readiness with 204 on /health,
takes its database as NOTES_DB, starts with uvicorn and seeds with its own script; its scenario lives in
perf/, not scenarios/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from perfci.targets.health import Readiness
from perfci.targets.process import ProcessSpec, process_target

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NOTES = Path(__file__).resolve().parent / "starlette_notes_service"
RUN_TIMEOUT_S = 180
NOTES_SERVE = "{python} -m uvicorn notes:app --host {host} --port {port}"
NOTES_SEED = "{python} notes.py seed {seed_users}"

CONFIG = """\
[tool.perfci]
target = "process"
profile = "smoke"
runs_dir = "runs"
baselines_dir = "baselines"

[tool.perfci.service]
readiness_path = "/health"
readiness_status = 204
seed_users = 50
boot_timeout_s = 30

[tool.perfci.service.process]
workdir = "@WORKDIR@"
python = ""
serve = "@SERVE@"
seed = "@SEED@"
database_env = "NOTES_DB"
sqlite_url = "{path}"

[tool.perfci.scenarios.notes]
file = "@SCENARIO@"
model = "closed"
"""


def write_config(root: Path, **changes: str) -> Path:
    """The notes service's [tool.perfci]; `changes` replace whole `key = value` lines (key -> new line)."""
    text = (
        CONFIG.replace("@WORKDIR@", str(NOTES))
        .replace("@SERVE@", NOTES_SERVE)
        .replace("@SEED@", NOTES_SEED)
        .replace("@SCENARIO@", str(NOTES / "perf" / "notes.py"))
    )
    lines = text.splitlines()
    for key, line in changes.items():
        (index,) = [i for i, old in enumerate(lines) if old.startswith(f"{key} = ")]
        lines[index] = line
    path = root / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def perfci(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFCI_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "perfci.cli", "run", "--config", str(config), "--no-progress", *args],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


def assert_fails(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """The exit code, one `error:` and one `hint:` line, every needle, and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    assert "\nerror: " in "\n" + result.stderr, result.stderr
    assert "\nhint: " in "\n" + result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def comparison_of(root: Path) -> dict[str, object]:
    (run_dir,) = [d for d in (root / "runs").iterdir() if d.is_dir()]
    loaded: dict[str, object] = json.loads((run_dir / "comparison.json").read_text(encoding="utf-8"))
    return loaded


def endpoints_of(comparison: dict[str, object]) -> dict[str, dict[str, object]]:
    scenarios = comparison["scenarios"]
    assert isinstance(scenarios, list)
    (scenario,) = scenarios
    return {e["endpoint"]: e for e in scenario["endpoints"]}


def test_a_service_of_another_shape_boots_from_its_configuration_and_is_measured(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = perfci(config, "--against-baseline")
    assert result.returncode == 0, result.stderr
    comparison = comparison_of(tmp_path)
    endpoints = endpoints_of(comparison)
    assert set(endpoints) == {"GET /notes/{id}"}  # the seeded notes answered, under their template label
    run_info = json.loads(next((tmp_path / "runs").iterdir()).joinpath("run.json").read_text(encoding="utf-8"))
    assert run_info["target_description"].startswith("process (python")
    service_log = next((tmp_path / "runs").glob("*/targets/candidate/service.log")).read_text(encoding="utf-8")
    assert "notes.py seed 50" in service_log  # the configured seed command ran, with its placeholder filled
    assert "-m uvicorn notes:app --host 127.0.0.1 --port" in service_log


BROKEN_SCENARIO = '"""A locustfile with a typo in an import."""\n\nfrom locust import HttpUserr\n'


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        pytest.param(
            {"serve": 'serve = "notes-server-not-installed --port {port}"'},
            ["service.process.serve", "notes-server-not-installed", "not on PATH"],
            id="serve-not-on-path",
        ),
        pytest.param(
            {"python": 'python = ".venv/bin/python"'},
            ["service.process.python", ".venv/bin/python", "not an executable file"],
            id="interpreter-missing",
        ),
        pytest.param(
            {"workdir": 'workdir = "no-such-folder"'},
            ["service.process.workdir", "no-such-folder", "not a directory"],
            id="workdir-missing",
        ),
        pytest.param(
            {"seed": 'seed = "{python} notes.py seed {seed_count}"'},
            ["service.process.seed", "placeholders"],
            id="unknown-placeholder",
        ),
        pytest.param(
            {"file": 'file = "perf/missing.py"'}, ["scenarios.notes.file", "perf/missing.py"], id="scenario-missing"
        ),
        pytest.param({"model": 'model = "poisson"'}, ["scenarios.notes.model"], id="unknown-model"),
        pytest.param(
            {"file": 'file = "broken.py"'},
            ["scenario 'notes' fails at import", "broken.py, line 3", "ImportError", "HttpUserr"],
            id="scenario-fails-at-import",
        ),
    ],
)
def test_a_bad_setting_is_exit_2_naming_the_key_the_file_and_a_fix(
    tmp_path: Path, changes: dict[str, str], needles: list[str]
) -> None:
    (tmp_path / "broken.py").write_text(BROKEN_SCENARIO, encoding="utf-8")
    config = write_config(tmp_path, **changes)
    assert_fails(perfci(config, "--against-baseline"), 2, str(config), *needles)


def test_a_readiness_path_that_never_answers_is_a_boot_failure_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, readiness_path='readiness_path = "/ready"', boot_timeout_s="boot_timeout_s = 3")
    result = perfci(config, "--against-baseline")
    assert_fails(result, 3, "service.readiness_path", "GET /ready answering 204", "readiness_status")
    assert comparison_of(tmp_path)["failure"] is not None


def _notes_spec(seed_users: int) -> ProcessSpec:
    return ProcessSpec(
        workdir=NOTES, serve=NOTES_SERVE, seed=NOTES_SEED, database_env="NOTES_DB", sqlite_url="{path}",
        readiness=Readiness("/health", 204), seed_users=seed_users, boot_timeout_s=30,
    )  # fmt: skip


def test_an_ab_of_one_url_is_exit_2_and_of_two_urls_is_labelled_with_them(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with ExitStack() as stack:
        base = stack.enter_context(process_target(_notes_spec(50), tmp_path / "base"))
        candidate = stack.enter_context(process_target(_notes_spec(50), tmp_path / "candidate"))

        one = perfci(config, "--url", candidate.base_url)  # the default run is an A/B
        assert_fails(one, 2, "two running services", "--base-url")
        assert not (tmp_path / "runs").exists()  # refused before a run directory

        two = perfci(config, "--base-url", base.base_url, "--candidate-url", candidate.base_url)
    assert two.returncode in (0, 1), two.stderr  # one smoke pair decides nothing either way; it must not fail
    comparison = comparison_of(tmp_path)
    assert comparison["mode"] == "ab"
    assert comparison["base"]["label"] == base.base_url  # type: ignore[index]
    assert comparison["candidate"]["label"] == candidate.base_url  # type: ignore[index]
    assert comparison["candidate"]["commit"] is None  # type: ignore[index]  # no commit names a running service
    assert "GET /notes/{id}" in endpoints_of(comparison)
