"""What an adopting repository runs: the reusable measuring workflow, the comment action, and the two
workflows `perfci init` writes to call them. Their shell steps run here with stand-ins for perfci and pip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfci import __version__
from perfci.cli import main

from .test_workflows import PINNED, REUSABLE_INSTALL, ROOT, WORKFLOWS, _actionlint, _zizmor, load, run_step, step

REUSABLE = WORKFLOWS / "perfci-reusable.yml"
ACTION = ROOT / "action.yml"
NOTES = ROOT / "tests" / "adoption" / "flask_notes_service"


def reusable() -> dict[str, Any]:
    return load(REUSABLE)


def action_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    return steps


def action_step(name: str) -> dict[str, Any]:
    return next(s for s in action_steps() if s.get("name") == name)


def stand_in(folder: Path, name: str, script: str) -> Path:
    """An executable `name` on a PATH of its own that records its arguments in `<name>-args`."""
    path = folder / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "$PWD/{name}-args"\n{script}\n')
    path.chmod(0o755)
    return path.parent


def with_path(folder: Path) -> dict[str, str]:
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


@pytest.fixture
def adopted(tmp_path: Path) -> Path:
    """The notes service after `perfci init --pin`: the workflows an adopter commits."""
    root = tmp_path / "notes"
    shutil.copytree(NOTES, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert main(["init", str(root), "--pin", "0" * 40]) == 0
    return root


# ----------------------------------------------------------------------------------------------------------
# The reusable workflow
# ----------------------------------------------------------------------------------------------------------


def test_the_reusable_workflow_is_called_with_the_adopters_inputs() -> None:
    workflow = reusable()
    assert set(workflow["on"]) == {"workflow_call"}
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert {"perfci-version", "python-version", "profile", "scenarios", "install"} <= set(inputs)
    assert inputs["perfci-version"]["required"] is True, "no default: the caller names the release it pinned"
    assert set(workflow["jobs"]) == {"plan", "shard", "merge"}
    for job in workflow["jobs"].values():
        assert job["permissions"] == {"contents": "read"}, "it measures PR code: never a write token"


@pytest.mark.parametrize("job_name", ["shard", "merge"])
def test_both_measuring_jobs_install_the_same_release_on_the_same_python(job_name: str) -> None:
    job = reusable()["jobs"][job_name]
    install = step(job, name="Install perfci")
    assert install["env"]["PERFCI_VERSION"] == "${{ inputs.perfci-version }}"
    assert install["run"].rstrip().splitlines()[-1].strip() == REUSABLE_INSTALL
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"


@pytest.mark.parametrize("version", ["0.1.0", "1.2.3rc1", "2.0.post1"])
def test_the_install_takes_an_exact_release(tmp_path: Path, version: str) -> None:
    folder = stand_in(tmp_path, "python", "exit 0")
    script = step(reusable()["jobs"]["shard"], name="Install perfci")["run"]
    result, _ = run_step(script, tmp_path, {"PERFCI_VERSION": version, **with_path(folder)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "python-args").read_text().split() == ["-m", "pip", "install", f"perfci=={version}"]


@pytest.mark.parametrize("version", ["", ">=0.1", "0.1.0; rm -rf /", "main", "0.1.*"])
def test_the_install_refuses_anything_but_an_exact_release(tmp_path: Path, version: str) -> None:
    folder = stand_in(tmp_path, "python", "exit 0")
    script = step(reusable()["jobs"]["merge"], name="Install perfci")["run"]
    result, _ = run_step(script, tmp_path, {"PERFCI_VERSION": version, **with_path(folder)})
    assert result.returncode == 2
    assert "::error::perfci-version must be an exact release" in result.stdout
    assert not (tmp_path / "python-args").exists(), "nothing installed"


def test_the_profile_scenario_and_base_reach_perfci_run(tmp_path: Path) -> None:
    shard = reusable()["jobs"]["shard"]
    measure = step(shard, id="perf")
    assert measure["env"]["PROFILE"] == "${{ inputs.profile }}"
    assert measure["env"]["SCENARIO"] == "${{ matrix.scenario }}"
    assert measure["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    runs = tmp_path / "runner-temp" / "perfci-runs"
    folder = stand_in(tmp_path, "perfci", f'mkdir -p "{runs}/20260101-000000-ab"\nexit 1')
    env = {"BASE_SHA": "b" * 40, "SCENARIO": "notes", "PROFILE": "smoke", **with_path(folder)}
    result, outputs = run_step(measure["run"], tmp_path, env)
    assert result.returncode == 0, "the upload comes before any failure"
    assert outputs == {"exit_code": "1", "run_dir": str(runs / "20260101-000000-ab")}
    args = (tmp_path / "perfci-args").read_text().split()
    assert args[:3] == ["run", "--ab", "b" * 40]
    assert args[args.index("--profile") + 1] == "smoke"
    assert args[args.index("--scenario") + 1] == "notes"


def test_the_install_input_runs_only_when_given(tmp_path: Path) -> None:
    install = step(reusable()["jobs"]["shard"], name="Install the service's dependencies")
    assert install["if"] == "${{ inputs.install != '' }}"
    result, _ = run_step(install["run"], tmp_path, {"INSTALL": "touch installed-here"})
    assert result.returncode == 0
    assert (tmp_path / "installed-here").is_file()


@pytest.mark.parametrize(
    ("config", "given", "expected"),
    [
        pytest.param("[tool.perfci.scenarios.notes]\nfile = 'perf/notes.py'\n", "", ["notes"], id="tables"),
        pytest.param(
            "[tool.perfci]\ndefault_scenarios = ['a']\n[tool.perfci.scenarios.a]\n[tool.perfci.scenarios.b]\n",
            "",
            ["a"],
            id="default-list",
        ),
        pytest.param("[tool.perfci]\ndefault_scenarios = ['a', 'b']\n", "b c", ["b", "c"], id="input"),
    ],
)
def test_the_plan_takes_the_input_else_the_configured_scenarios(
    tmp_path: Path, config: str, given: str, expected: list[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(config)
    script = step(reusable()["jobs"]["plan"], id="scenarios")["run"]
    result, outputs = run_step(script, tmp_path, {"SCENARIOS": given})
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs["scenarios"]) == expected


@pytest.mark.parametrize("given", ["", "ok 'bad;name'"], ids=["none-defined", "unfit-name"])
def test_the_plan_refuses_no_scenarios_or_unfit_names(tmp_path: Path, given: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.perfci]\nprofile = 'pr'\n")
    script = step(reusable()["jobs"]["plan"], id="scenarios")["run"]
    result, outputs = run_step(script, tmp_path, {"SCENARIOS": given})
    assert result.returncode != 0
    assert "::error::" in result.stderr
    assert "scenarios" not in outputs


# ----------------------------------------------------------------------------------------------------------
# The comment action
# ----------------------------------------------------------------------------------------------------------


def test_the_action_posts_the_report_the_reusable_workflow_uploads() -> None:
    upload = step(reusable()["jobs"]["merge"], id="upload")
    download = next(s for s in action_steps() if s.get("uses", "").startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"] == "perfci-report"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    for each in action_steps():
        if "uses" in each:
            assert PINNED.match(each["uses"]), each["uses"]
            assert not each["uses"].startswith("actions/checkout@"), "the comment job never checks out PR code"
    post = action_step("Post or update the comment")
    assert "perfci comment " in post["run"]
    assert "--run-dir" not in post["run"], "the artifact is validated, not trusted"
    assert post["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def _run_action_install(tmp_path: Path, installed: str, wanted: str) -> subprocess.CompletedProcess[str]:
    folder = stand_in(tmp_path, "python", "exit 0")
    stand_in(tmp_path, "perfci", f'echo "perfci {installed}"')
    install = action_step("Install perfci with only what publishing needs (hash-pinned)")
    env = {"PERFCI_VERSION": wanted, "GITHUB_ACTION_PATH": "/actions/perfci", **with_path(folder)}
    result, _ = run_step(install["run"], tmp_path, env)
    return result


def test_the_action_installs_perfci_from_its_own_commit_with_hashed_dependencies(tmp_path: Path) -> None:
    result = _run_action_install(tmp_path, __version__, __version__)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "python-args").read_text().split("\n-m\n")
    assert calls[0].split() == [
        "-m",
        "pip",
        "install",
        "--require-hashes",
        "--no-deps",
        "-r",
        "/actions/perfci/requirements/publish.txt",
    ]
    assert calls[1].split() == ["pip", "install", "--no-deps", "--no-build-isolation", "/actions/perfci"]


def test_the_action_refuses_a_release_other_than_the_measuring_jobs(tmp_path: Path) -> None:
    result = _run_action_install(tmp_path, "9.9.9", __version__)
    assert result.returncode == 2
    assert f"this action is perfci 9.9.9 but the measuring job installed perfci {__version__}" in result.stdout


# ----------------------------------------------------------------------------------------------------------
# The workflows `perfci init` writes
# ----------------------------------------------------------------------------------------------------------


def test_init_workflows_pin_the_reusable_workflow_and_the_action_to_one_release(adopted: Path) -> None:
    perf = load(adopted / ".github/workflows/perf.yml")
    comment = load(adopted / ".github/workflows/perf-comment.yml")
    measuring = perf["jobs"]["perf"]
    assert measuring["uses"] == f"perfci/perfci/.github/workflows/perfci-reusable.yml@{'0' * 40}"
    (action,) = comment["jobs"]["comment"]["steps"]
    assert action["uses"] == f"perfci/perfci@{'0' * 40}"
    # The comment job installs the release the measuring job used.
    assert measuring["with"]["perfci-version"] == action["with"]["perfci-version"] == __version__
    # Every input the call passes exists in the reusable workflow.
    assert set(measuring["with"]) <= set(reusable()["on"]["workflow_call"]["inputs"])
    assert set(action["with"]) <= set(yaml.safe_load(ACTION.read_text())["inputs"])
    assert measuring["with"]["install"] == "python -m pip install -e ."


def test_init_workflows_chain_pull_request_to_comment_with_least_privilege(adopted: Path) -> None:
    perf = load(adopted / ".github/workflows/perf.yml")
    comment = load(adopted / ".github/workflows/perf-comment.yml")
    assert perf["on"] == {"pull_request": None}
    assert comment["on"] == {"workflow_run": {"workflows": [perf["name"]], "types": ["completed"]}}
    assert perf["permissions"] == comment["permissions"] == {}
    assert perf["jobs"]["perf"]["permissions"] == {"contents": "read"}
    assert comment["jobs"]["comment"]["permissions"] == {
        "actions": "read",
        "pull-requests": "write",
        "checks": "write",
    }


def test_init_workflows_pass_actionlint(adopted: Path, actionlint: Path) -> None:
    files = sorted((adopted / ".github" / "workflows").glob("*.yml"))
    problems = _actionlint(actionlint, *files)
    assert problems == [], problems


def test_init_workflows_pass_zizmor_when_pinned_by_commit(adopted: Path) -> None:
    files = sorted(str(p) for p in (adopted / ".github" / "workflows").glob("*.yml"))
    result = subprocess.run(
        [_zizmor(), "--offline", "--persona", "auditor", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_without_pin_uses_the_release_tag_and_refuses_a_bad_pin(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path)]) == 0
    perf = load(tmp_path / ".github/workflows/perf.yml")
    assert perf["jobs"]["perf"]["uses"].endswith(f"perfci-reusable.yml@v{__version__}")
    assert main(["init", str(tmp_path / "other"), "--pin", "v1"]) == 2


@pytest.mark.parametrize(("check", "flag"), [("true", ["--check"]), ("false", [])])
def test_the_action_passes_its_inputs_to_perfci_comment(tmp_path: Path, check: str, flag: list[str]) -> None:
    folder = stand_in(tmp_path, "perfci", "exit 0")
    post = action_step("Post or update the comment")
    assert post["env"]["MODE"] == "${{ inputs.mode }}"
    assert post["env"]["CHECK"] == "${{ inputs.check }}"
    env = {"HEAD_SHA": "c" * 40, "MODE": "on-change", "CHECK": check, **with_path(folder)}
    result, _ = run_step(post["run"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    report = str(tmp_path / "runner-temp" / "perfci-report")
    assert (tmp_path / "perfci-args").read_text().split() == [
        "comment",
        report,
        "--sha",
        "c" * 40,
        "--mode",
        "on-change",
        *flag,
    ]
