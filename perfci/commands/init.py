"""`perfci init`: write [tool.perfci], a first scenario and the two workflows for the repository it runs in.

What it can read from the repository (project_detect) it writes without asking, and says which values are
guesses and where to fix them. It never replaces an existing file or [tool.perfci] section without --force,
so a second run changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from perfci import __version__
from perfci.commands.common import Subparsers
from perfci.errors import ConfigError
from perfci.project_detect import ComposeFindings, ComposeService, Findings, Found, detect

# Where the reusable workflow and the comment action live: the workflows `perfci init` writes name them.
PERFCI_REPOSITORY = "perfci/perfci"
SCENARIO_FILE = "perf/smoke.py"
RUNS_IGNORE = ".perfci/"  # run directories: raw samples and service logs, never committed
WORKFLOWS = (".github/workflows/perf.yml", ".github/workflows/perf-comment.yml")
_SECTION_HEADER = re.compile(r"^\s*\[\[?\s*tool\.perfci\s*[\].]", re.MULTILINE)
_ANY_HEADER = re.compile(r"^\s*\[", re.MULTILINE)


@dataclass(frozen=True)
class Guess:
    key: str  # dotted below [tool.perfci], e.g. service.process.serve
    value: str
    source: str  # the file it was read from, or why it is a placeholder


@dataclass(frozen=True)
class Planned:
    path: str  # relative to the repository
    text: str
    exists: bool  # for pyproject.toml: whether it already has a [tool.perfci] section


def setup_arguments(subparsers: Subparsers) -> None:
    """Add `perfci init` to the command line (the shape of a perfci subcommand: setup_arguments + run)."""
    parser = subparsers.add_parser(
        "init", help="write [tool.perfci], a first scenario and the workflows for a repository"
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", type=Path, default=Path(), help="the repository (default: here)")
    parser.add_argument("--force", action="store_true", help="replace existing files and [tool.perfci]")
    parser.add_argument("--dry-run", action="store_true", help="print what would be written, write nothing")
    parser.add_argument(
        "--pin", metavar="COMMIT", help="the commit of this perfci release: the workflows use it instead of the tag"
    )


def run(args: argparse.Namespace) -> int:
    root = Path(args.directory).resolve()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder", "run `perfci init` in your repository, or pass its path")
    if args.pin is not None and not re.fullmatch(r"[0-9a-f]{40}", args.pin):
        raise ConfigError(
            f"--pin {args.pin!r} is not a full commit id",
            f"give the 40-character commit of perfci's tag v{__version__} "
            f"(`git ls-remote https://github.com/{PERFCI_REPOSITORY} refs/tags/v{__version__}`)",
        )
    findings = detect(root)
    section, guesses = render_section(findings)
    plan = plan_files(root, findings, section, args.pin)
    written = apply(root, plan, force=args.force, dry_run=args.dry_run)
    verb = "would write" if args.dry_run else "wrote"
    for item in plan:
        if item.path in written:
            print(f"{verb} {_describe(item.path)}")
        elif item.path == ".gitignore":
            print(f"kept .gitignore: it ignores {RUNS_IGNORE} already")
        else:
            print(f"kept {_describe(item.path)}: it exists (--force replaces it)")
    if not written:
        print("perfci init: nothing changed; every file and [tool.perfci] were already there")
        return 0
    print("\nguessed (check each; edit pyproject.toml where it is wrong):")
    for guess in guesses:
        table, _, key = guess.key.rpartition(".")
        print(f"  {guess.key} = {guess.value}  ({guess.source}); if wrong, edit `{key}` under [tool.perfci.{table}]")
    print(
        "\nnext: `perfci run --profile smoke` measures this checkout against main; perfci's docs/adopting.md "
        "goes on from here (baseline, workflows, the PR comment)"
    )
    return 0


def _describe(path: str) -> str:
    return {"pyproject.toml": "pyproject.toml [tool.perfci]", ".gitignore": f".gitignore {RUNS_IGNORE}"}.get(path, path)


# ----------------------------------------------------------------------------------------------------------
# The [tool.perfci] section
# ----------------------------------------------------------------------------------------------------------


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Section:
    """The lines of [tool.perfci] being written, and which of their values are guesses."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.guesses: list[Guess] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def value(self, key: str, found: Found | None, otherwise: str, *, number: bool = False) -> None:
        """`name = value  # guessed from FILE` for a finding, else `name = otherwise` (a default or placeholder)."""
        name = key.rsplit(".", 1)[-1]
        if found is None:
            self.lines.append(f"{name} = {otherwise}")
            return
        self.lines.append(f"{name} = {found.value if number else _toml(found.value)}  # guessed from {found.source}")
        self.guesses.append(Guess(key, found.value, found.source))


def render_section(findings: Findings) -> tuple[str, list[Guess]]:
    """The [tool.perfci] text for these findings, and every value in it that is a guess."""
    compose = findings.compose
    measured = compose.measured if compose else None
    section = _Section()
    section.add(
        "# perfci: performance-regression checks. Written by `perfci init`; every key is described in perfci's",
        "# docs/configuration.md. Values marked 'guessed' were read from this repository: check them.",
        "[tool.perfci]",
        f"target = {_toml('auto' if measured else 'process')}  # auto: compose when a container engine answers",
        'profile = "pr"  # built in: pr (the PR check), full, smoke',
        "",
        "[tool.perfci.service]",
    )
    section.value("service.readiness_path", findings.health, '"/"  # no health route found: name one')
    if findings.health is None:
        section.guesses.append(Guess("service.readiness_path", "/", "no health route found"))
    section.value("service.readiness_status", findings.health_status, "200", number=True)
    section.add(
        "boot_timeout_s = 90",
        "seed_users = 100  # {seed_users} in seed commands; PERFCI_SEED_USERS in scenarios",
    )
    _process_table(section, findings)
    if compose and measured:
        _compose_table(section, compose, measured, findings.database_env)
    section.add(
        "",
        "# One table per scenario: a plain Locust file anywhere in the repository.",
        "[tool.perfci.scenarios.smoke]",
        f"file = {_toml(SCENARIO_FILE)}",
        'model = "closed"  # closed: a fixed number of users; open: a fixed arrival rate',
    )
    return "\n".join(section.lines) + "\n", section.guesses


def _process_table(section: _Section, findings: Findings) -> None:
    section.add(
        "",
        "# target = process: the service as a local process, one per arm (and per trial if fresh_service).",
        "[tool.perfci.service.process]",
    )
    app = findings.app
    serve: Found | None = None
    if app:
        if app.kind == "fastapi":
            command = f"{{python}} -m uvicorn {app.module}:{app.attribute} --host {{host}} --port {{port}}"
        else:
            command = f"{{python}} -m flask --app {app.module}:{app.attribute} run --host {{host}} --port {{port}}"
        serve = Found(command, app.source)
    section.add(f"workdir = {_toml(app.workdir if app else '.')}")
    section.value("service.process.serve", serve, '""  # no FastAPI or Flask app found: what serves on {host}:{port}')
    if serve is None:
        section.guesses.append(Guess("service.process.serve", '""', "no FastAPI or Flask app object found"))
    section.value("service.process.seed", findings.seed, '""  # e.g. "{python} -m yourapp.seed --count {seed_users}"')
    section.value("service.process.database_env", findings.database_env, '""  # the variable with the database URL')
    section.add('database_url = ""  # "": a SQLite file per run; or postgresql://... (a database per arm)')
    if findings.sqlite_url:
        section.value("service.process.sqlite_url", findings.sqlite_url, "")


def _compose_table(
    section: _Section, compose: ComposeFindings, measured: ComposeService, database_env: Found | None
) -> None:
    database = compose.database
    port = str(measured.container_ports[0]) if measured.container_ports else "8000"
    section.add("", "# target = compose: the services of the compose file, measured in containers.")
    section.add("[tool.perfci.service.compose]", f"file = {_toml(compose.file)}")
    section.value("service.compose.service", Found(measured.name, compose.file), "")
    section.value("service.compose.port", Found(port, compose.file), "", number=True)
    found_database = Found(database.name, compose.file) if database else None
    section.value("service.compose.database_service", found_database, '""  # no PostgreSQL service found')
    section.add('seed = ""  # run in the measured container, e.g. "python -m yourapp.seed --count {seed_users}"')
    section.add(f"database_env = {_toml(database_env.value if database_env else '')}")


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------


def _template(name: str) -> str:
    return resources.files("perfci").joinpath("templates", "init", name).read_text(encoding="utf-8")


def render_scenario(findings: Findings) -> str:
    routes = [r.value for r in (findings.health, findings.get_route) if r is not None] or ["/"]
    tasks = []
    for weight, route in zip((1, 4), routes, strict=False):
        function = re.sub(r"\W+", "_", route.strip("/")) or "root"
        tasks.append(
            f"\n    @task({weight})\n    def get_{function}(self) -> None:\n"
            f"        self.client.get({json.dumps(route)}, name={json.dumps(route)})\n"
        )
    return _template("smoke.py.tmpl").replace("@@TASKS@@", "".join(tasks).rstrip("\n"))


def render_workflows(findings: Findings, pin: str | None = None) -> dict[str, str]:
    """perf.yml and perf-comment.yml, both on this perfci release: its tag, or its commit with the tag beside it."""
    install = f"\n      install: {findings.install_command}" if findings.install_command else ""
    ref = f"{pin} # v{__version__}" if pin else f"v{__version__}"
    values = {"REPOSITORY": PERFCI_REPOSITORY, "VERSION": __version__, "INSTALL": install, "REF": ref}
    rendered = {}
    for path in WORKFLOWS:
        text = _template(Path(path).name)
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        rendered[path] = text
    return rendered


def plan_files(root: Path, findings: Findings, section: str, pin: str | None = None) -> list[Planned]:
    pyproject = root / "pyproject.toml"
    has_section = pyproject.is_file() and bool(_SECTION_HEADER.search(pyproject.read_text(encoding="utf-8")))
    plan = [
        Planned("pyproject.toml", section, has_section),
        Planned(SCENARIO_FILE, render_scenario(findings), (root / SCENARIO_FILE).exists()),
    ]
    plan += [Planned(path, text, (root / path).exists()) for path, text in render_workflows(findings, pin).items()]
    return [*plan, Planned(".gitignore", f"{RUNS_IGNORE}\n", _ignores_runs(root / ".gitignore"))]


def _ignores_runs(gitignore: Path) -> bool:
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    return any(line.strip().strip("/") == RUNS_IGNORE.strip("/") for line in lines)


def replace_section(text: str, section: str) -> str:
    """`text` with its [tool.perfci...] tables removed and `section` appended; other tables kept in place."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if _ANY_HEADER.match(line):
            inside = bool(_SECTION_HEADER.match(line))
            # The comment block right above a removed table belongs to it (e.g. the one init wrote).
            while inside and kept and kept[-1].lstrip().startswith("#"):
                kept.pop()
        if not inside:
            kept.append(line)
    body = "".join(kept).rstrip("\n")
    return (body + "\n\n" if body else "") + section


def apply(root: Path, plan: list[Planned], *, force: bool, dry_run: bool) -> set[str]:
    """Write what is missing (or everything with `force`); returns the paths written."""
    written: set[str] = set()
    for item in plan:
        # --force never repeats a line in .gitignore: it only adds one that is missing.
        if item.exists and (not force or item.path == ".gitignore"):
            continue
        written.add(item.path)
        if dry_run:
            continue
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if item.path == "pyproject.toml":
            path.write_text(replace_section(current, item.text), encoding="utf-8")
        elif item.path == ".gitignore":
            path.write_text(current + ("\n" if current and not current.endswith("\n") else "") + item.text)
        else:
            path.write_text(item.text, encoding="utf-8")
    return written
