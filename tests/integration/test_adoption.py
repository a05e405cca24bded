"""A second service adopted end to end, as a new user would: `perfci init`, a baseline, an A/B that finds a
regression committed on a branch, and the comment that names it.

The service (tests/adoption/flask_notes_service) shares nothing with this project's own: Flask instead of
FastAPI, SQLite through a plain file path in NOTES_DB, /health answering 204, its app in notes/app.py and
its scenario in perf/notes.py. Only documented configuration and flags are used (docs/adopting.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.builders import REPO, git

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTES = REPO / "tests" / "adoption" / "flask_notes_service"
PERFCI = str(Path(sys.executable).parent / "perfci")
# The regression the candidate branch commits: each listing waits this long (GET /notes takes ~2 ms).
SLOW_MS = 40
# Short and few, so the whole adoption stays within a few minutes: the smoke profile, four pairs of 3 s.
AB_FLAGS = ("--profile", "smoke", "--scenario", "notes", "--trials", "4", "--duration", "3s", "--no-progress")


def perfci(repo: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """The installed `perfci` command in the adopted repository, without this project's CI variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFCI_", "GITHUB_"))}
    return subprocess.run(
        [PERFCI, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def notes_repo(tmp_path: Path) -> Path:
    """The notes service as its own git repository, one commit on main."""
    repo = tmp_path / "notes"
    shutil.copytree(NOTES, repo, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    (repo / ".gitignore").write_text("__pycache__/\n*.sqlite3\n", encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "notes service")
    return repo


def test_a_flask_service_is_adopted_from_init_to_the_comment(notes_repo: Path) -> None:
    # 1. perfci init detects what the docs say it detects, and a second run changes nothing.
    init = perfci(notes_repo, "init")
    assert init.returncode == 0, init.stderr
    config = tomllib.loads((notes_repo / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["perfci"]
    assert config["target"] == "process"
    assert config["service"]["readiness_path"] == "/health"
    assert config["service"]["readiness_status"] == 204
    process = config["service"]["process"]
    assert process["serve"] == "{python} -m flask --app notes.app:app run --host {host} --port {port}"
    assert process["seed"] == "{python} -m notes.seed --count {seed_users}"
    assert process["database_env"] == "NOTES_DB"
    assert process["sqlite_url"] == "{path}"
    assert (notes_repo / "perf" / "smoke.py").is_file()
    assert (notes_repo / ".github" / "workflows" / "perf.yml").is_file()
    assert ".perfci/" in (notes_repo / ".gitignore").read_text(encoding="utf-8").splitlines()
    again = perfci(notes_repo, "init")
    assert again.returncode == 0
    assert "nothing changed" in again.stdout

    # 2. The adopter's own scenario, declared as docs/adopting.md shows, and committed on main.
    with (notes_repo / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write('\n[tool.perfci.scenarios.notes]\nfile = "perf/notes.py"\nmodel = "closed"\n')
    git(notes_repo, "add", "-A")
    git(notes_repo, "commit", "-q", "-m", "Measure the notes service with perfci")

    # 3. A baseline of main with the smoke profile.
    baseline = perfci(notes_repo, "baseline", "--profile", "smoke", "--scenario", "notes", "--no-progress")
    assert baseline.returncode == 0, baseline.stderr[-3000:]
    stored = sorted(p.name for p in (notes_repo / "baselines").rglob("*") if p.is_file())
    assert any("notes" in name for name in stored), stored

    # 4. A branch that makes every listing slower, committed as a PR would be.
    git(notes_repo, "checkout", "-q", "-b", "slow-listing")
    app = notes_repo / "notes" / "app.py"
    app.write_text(
        app.read_text(encoding="utf-8").replace('"NOTES_SLOW_MS", "0"', f'"NOTES_SLOW_MS", "{SLOW_MS}"'),
        encoding="utf-8",
    )
    git(notes_repo, "commit", "-q", "-am", "List notes more slowly")
    candidate = git(notes_repo, "rev-parse", "HEAD")

    # 5. The A/B against main fails the check on the slowed route, and only there.
    ab = perfci(notes_repo, "run", "--ab", "main", *AB_FLAGS)
    assert ab.returncode == 1, ab.stderr[-3000:]
    (run_dir,) = (d for d in (notes_repo / ".perfci" / "runs").iterdir() if d.is_dir() and "ab-main" in d.name)
    comment = (run_dir / "report.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in comment.splitlines():
        if line.startswith("| GET "):
            rows.setdefault(line.split("|")[1].strip(), line)  # the verdict table comes first
    assert "regression" in rows["GET /notes"], comment
    assert "regression" not in rows["GET /notes/{id}"], comment
    assert candidate[:7] in comment, "the comment names the commit that was measured"
